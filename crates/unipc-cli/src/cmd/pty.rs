//! `unipc pty -- CMD [ARGS]`: runs CMD on a pseudoterminal, relays it to
//! this terminal, and exits with CMD's status.
//!
//! When stdin ends, the terminal's end-of-file character goes to CMD (twice
//! after a partial line: the first ends the line), as a person typing
//! Ctrl-D would send it, so `unipc pty -- cat < file` ends. SIGINT, SIGTERM
//! and SIGHUP put this terminal back in its own mode before exiting.

use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode};

use unipc::stream::pty;

use crate::cli::PtyArgs;

pub fn run(args: PtyArgs) -> anyhow::Result<ExitCode> {
    // Before any thread starts, so that every thread has them blocked.
    crate::terminate::install()?;
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
    let raw = pty::RawMode::stdin()?;
    if let Some(raw) = &raw {
        let restorer = raw.restorer();
        crate::terminate::on_signal(move || {
            let _ = restorer.restore();
        });
    }

    let (master, mut process) = child.into_parts();
    let master = std::sync::Arc::new(master);
    // Our input goes to the child from a thread, which ends with the
    // process once the child has gone.
    let to_child = std::sync::Arc::clone(&master);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut stdin = io::stdin().lock();
        let mut at_line_start = true;
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if (&*to_child).write_all(&buf[..n]).is_err() {
                        return;
                    }
                    at_line_start = matches!(buf[n - 1], b'\n' | b'\r');
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let Ok(eof) = to_child.eof_char() else { return };
        let times = if at_line_start { 1 } else { 2 };
        let _ = (&*to_child).write_all(&vec![eof; times]);
    });
    let mut stdout = io::stdout().lock();
    let mut buf = [0u8; 4096];
    loop {
        match (&*master).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => crate::out::write_stdout(&mut stdout, &buf[..n])?,
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
