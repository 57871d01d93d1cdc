//! `unipc pty -- CMD [ARGS]`: runs CMD on a pseudoterminal, relays it to
//! this terminal, and exits with CMD's status.

use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode};

use unipc::stream::pty;

use crate::cli::PtyArgs;

pub fn run(args: PtyArgs) -> anyhow::Result<ExitCode> {
    let pair = pty::Pair::open()?;
    let (rows, cols) = match (args.rows, args.cols) {
        (Some(r), Some(c)) => (r, c),
        (r, c) => {
            // Inherit our own terminal's size when we have one.
            let ours = rustix::termios::tcgetwinsize(rustix::stdio::stdin()).ok();
            (
                r.or(ours.map(|w| w.ws_row)).unwrap_or(24),
                c.or(ours.map(|w| w.ws_col)).unwrap_or(80),
            )
        }
    };
    pair.set_window_size(rows, cols)?;
    let mut command = Command::new(&args.command[0]);
    command.args(&args.command[1..]);
    let child = pair.spawn(command)?;
    let _raw = pty::RawMode::stdin()?;

    let (master, mut process) = child.into_parts();
    let master = std::sync::Arc::new(master);
    // Our input goes to the child from a thread, which ends with the
    // process once the child has gone.
    let to_child = std::sync::Arc::clone(&master);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut stdin = io::stdin().lock();
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || (&*to_child).write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let mut stdout = io::stdout().lock();
    let mut buf = [0u8; 4096];
    loop {
        match (&*master).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                stdout.write_all(&buf[..n])?;
                stdout.flush()?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let status = process.wait()?;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(code as u8),
        (None, Some(signal)) => ExitCode::from(128 + signal as u8),
        _ => ExitCode::FAILURE,
    })
}
