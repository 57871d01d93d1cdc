//! Two network namespaces joined by a veth pair, for tests that need two
//! hosts on one machine: [`NetPair`].
//!
//! Made with iproute2's `ip` (as root); a test runs its peers inside with
//! `ip netns exec NAME PROGRAM ...`. Where the pair cannot be made (not
//! root, no `ip`, a kernel that refuses a namespace or a veth), the test
//! skips through [`NetPair::or_skip`], saying why.
//!
//! ```no_run
//! use unipc_test_support::netns::NetPair;
//!
//! let Some(pair) = NetPair::or_skip() else { return };
//! // ... `ip netns exec <pair.b> server`, then `ip netns exec <pair.a> client`,
//! // the client reaching the server at pair.addr_b ...
//! pair.tear_down(); // deletes both and checks that `ip netns list` lost them
//! ```

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The veth end in namespace `a`.
pub const VETH_A: &str = "veth-a";
/// The veth end in namespace `b`.
pub const VETH_B: &str = "veth-b";

/// Runs `ip ARGS`; on failure, says what failed with `ip`'s stderr.
///
/// # Errors
/// `ip` missing, or its exit status and message.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The names `ip netns list` shows (empty when `ip` cannot run).
pub fn list() -> Vec<String> {
    Command::new("ip")
        .args(["netns", "list"])
        .stdin(Stdio::null())
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether this process's effective user is root, from `/proc/self/status`.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            Some(line.split_whitespace().nth(2)? == "0")
        })
        .unwrap_or(false)
}

/// Two network namespaces, `a` and `b` (`unipc-PID-N-a`, `-b`), joined by
/// a veth pair: [`VETH_A`] in `a` with `10.77.X.1/24`, [`VETH_B`] in `b`
/// with `10.77.X.2/24`, both up with their loopbacks, and a multicast
/// route (`224.0.0.0/4`) on each.
///
/// Dropping it deletes both namespaces, however the test ends; the veth
/// pair goes with them once the last process inside has exited, so kill
/// the peers first.
#[derive(Debug)]
pub struct NetPair {
    /// The first namespace's name.
    pub a: String,
    /// The second namespace's name.
    pub b: String,
    /// [`VETH_A`]'s address, in `a`.
    pub addr_a: Ipv4Addr,
    /// [`VETH_B`]'s address, in `b`.
    pub addr_b: Ipv4Addr,
}

impl NetPair {
    /// Makes the pair.
    ///
    /// # Errors
    /// Why it cannot be made, for the skip line.
    pub fn new() -> Result<NetPair, String> {
        if !is_root() {
            return Err("network namespaces need root".into());
        }
        if Command::new("ip").arg("-V").output().is_err() {
            return Err("no `ip` binary (iproute2) on PATH".into());
        }
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // X only tells pairs apart in a trace: each pair has namespaces of
        // its own, so addresses cannot clash between pairs.
        let x = ((pid + n) % 250 + 1) as u8;
        let mut pair = NetPair {
            a: String::new(),
            b: String::new(),
            addr_a: Ipv4Addr::new(10, 77, x, 1),
            addr_b: Ipv4Addr::new(10, 77, x, 2),
        };
        // Each name is set once its namespace exists: from then on the
        // guard deletes it, even if a later step fails or panics.
        for side in ["a", "b"] {
            let name = format!("unipc-{pid}-{n}-{side}");
            ip(&["netns", "add", &name])
                .map_err(|e| format!("cannot make a network namespace: {e}"))?;
            match side {
                "a" => pair.a = name,
                _ => pair.b = name,
            }
        }
        pair.configure()?;
        Ok(pair)
    }

    /// [`NetPair::new`], or `None` after recording the skip with its reason.
    pub fn or_skip() -> Option<NetPair> {
        match NetPair::new() {
            Ok(pair) => Some(pair),
            Err(reason) => {
                crate::skip(reason);
                None
            }
        }
    }

    fn configure(&self) -> Result<(), String> {
        let (a, b) = (self.a.as_str(), self.b.as_str());
        ip(&[
            "link", "add", VETH_A, "netns", a, "type", "veth", "peer", "name", VETH_B, "netns", b,
        ])
        .map_err(|e| format!("cannot make a veth pair: {e}"))?;
        for (ns, dev, addr) in [(a, VETH_A, self.addr_a), (b, VETH_B, self.addr_b)] {
            let cidr = format!("{addr}/24");
            ip(&["-n", ns, "addr", "add", &cidr, "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "route", "add", "224.0.0.0/4", "dev", dev])?;
        }
        Ok(())
    }

    /// Takes [`VETH_B`] down inside `b`: host `b` disappears. Nothing more
    /// leaves `b`; `a` sees its veth lose carrier, which silently drops
    /// what it sends.
    ///
    /// # Panics
    /// When `ip` fails.
    pub fn cut(&self) {
        if let Err(err) = ip(&["-n", &self.b, "link", "set", VETH_B, "down"]) {
            panic!("cutting the link: {err}");
        }
    }

    /// `ip netns exec NS`: the start of a command line run inside `ns`.
    pub fn exec(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns]).arg(program);
        command
    }

    /// Deletes both namespaces and checks that `ip netns list` no longer
    /// shows them.
    ///
    /// # Panics
    /// When one is left.
    pub fn tear_down(self) {
        let names = [self.a.clone(), self.b.clone()];
        drop(self);
        let left = list();
        for name in names {
            assert!(!left.contains(&name), "namespace {name} was left behind");
        }
    }
}

impl Drop for NetPair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            if !ns.is_empty() {
                if let Err(err) = ip(&["netns", "del", ns]) {
                    eprintln!("cleanup: {err}");
                }
            }
        }
    }
}
