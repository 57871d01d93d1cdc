//! What the report says about the machine.

use crate::report::{Limit, Machine};

/// Reads the CPU model, the usable CPUs, the kernel and the limits that
/// shape IPC figures.
pub fn describe() -> Machine {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let uname = rustix::system::uname();
    let kernel = format!(
        "{} {}",
        uname.sysname().to_string_lossy(),
        uname.release().to_string_lossy()
    );
    let limits = [
        ("pipe-max-size", "/proc/sys/fs/pipe-max-size"),
        ("mqueue msg_max", "/proc/sys/fs/mqueue/msg_max"),
        ("mqueue msgsize_max", "/proc/sys/fs/mqueue/msgsize_max"),
        ("msgmax", "/proc/sys/kernel/msgmax"),
        ("msgmnb", "/proc/sys/kernel/msgmnb"),
        ("wmem_max", "/proc/sys/net/core/wmem_max"),
        ("rmem_max", "/proc/sys/net/core/rmem_max"),
    ]
    .into_iter()
    .map(|(name, path)| Limit {
        name: name.to_owned(),
        value: std::fs::read_to_string(path)
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|_| "unreadable".into()),
        source: path.to_owned(),
    })
    .collect();
    Machine {
        cpu_model,
        cores: crate::placement::allowed_cpus().len(),
        kernel,
        limits,
    }
}
