//! Writing to stdout when stdout may be a closed pipe.

use std::io;

/// Whether `err` (anywhere in its chain) is a write to a closed pipe.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The error as one line: the context chain down to the first unipc error,
/// whose own text already names the object, the call and the OS reason (its
/// sources would only repeat them).
pub fn one_line(err: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in err.chain() {
        parts.push(cause.to_string());
        if cause.downcast_ref::<unipc::Error>().is_some() {
            break;
        }
    }
    parts.join(": ")
}
