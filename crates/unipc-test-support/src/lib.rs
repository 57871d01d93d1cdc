//! What every test of the workspace shares: the one way a test says it did
//! not run, or ran only in part.
//!
//! A skipped test still passes for libtest, so a skip that only printed
//! would hide among the passes (and libtest shows a passing test's output
//! only with `--nocapture`). [`skip`] therefore prints `SKIP <test>:
//! <reason>` on stderr *and* appends the same line to the file named by
//! [`LOG_ENV`], when it is set: `.ci/run` sets it, runs `cargo test
//! --workspace` as the README says, and counts the skips apart from the
//! passes with their reasons. Children a test re-executes inherit the
//! variable, so a skip decided in a peer process counts too.
//!
//! ```
//! // In a test that needs IPv6:
//! if std::net::UdpSocket::bind("[::1]:0").is_err() {
//!     unipc_test_support::skip("no IPv6 loopback on this host");
//!     return;
//! }
//! ```
#![deny(missing_docs)]

use std::fmt::Display;
use std::io::Write;

/// The environment variable naming the file every skip is appended to.
pub const LOG_ENV: &str = "UNIPC_SKIP_LOG";

/// Records that the running test skips, wholly or (as `reason` says) in
/// part: prints `SKIP <test>: <reason>` on stderr and appends that line to
/// the file [`LOG_ENV`] names. `<test>` is the test's path as libtest
/// names it (the name of the thread the test runs on).
///
/// # Panics
/// When the log is named but cannot be written: a skip must never pass
/// silently as a test that ran.
pub fn skip(reason: impl Display) {
    let thread = std::thread::current();
    let test = match thread.name() {
        Some(name) if name != "main" => name.to_owned(),
        // Tests run on the main thread (`--test-threads=1` on some
        // versions of libtest) are named by the binary instead.
        _ => std::env::args()
            .next()
            .unwrap_or_else(|| "a test".to_owned()),
    };
    let line = format!("SKIP {test}: {reason}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os(LOG_ENV) {
        // One write of one line to an O_APPEND file: lines from concurrent
        // tests and processes do not interleave.
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut log| log.write_all(format!("{line}\n").as_bytes()));
        if let Err(err) = written {
            let path = std::path::Path::new(&path);
            panic!("{}: cannot record the skip ({err}): {line}", path.display());
        }
    }
}
