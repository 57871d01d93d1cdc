//! `unipc compare`: the facilities' properties side by side, built from the
//! metadata each facility declares in the library (so it cannot drift from
//! the code) and the limits read live from this machine.
//!
//! It answers "which facility?": [`table`] puts one facility per row,
//! [`NEEDS`] is the vocabulary `--need` filters by, and [`LatencyKey`]
//! orders the rows by a latency measured by `unipc bench --json`.

use serde::Serialize;
use unipc::facility::{
    self, Direction, Facility, Naming, Persistence, Properties, Reach, Shape, Tags,
};

use crate::report::Limit;

/// One facility's row.
#[derive(Debug, Serialize)]
pub struct FacilityRow {
    /// Facility name.
    pub name: &'static str,
    /// What it is.
    pub summary: &'static str,
    /// How it is addressed.
    pub addressing: &'static str,
    /// "byte stream" or "messages".
    pub shape: &'static str,
    /// Whether message boundaries are kept.
    pub boundaries: bool,
    /// "one-way" or "two-way".
    pub direction: &'static str,
    /// "none", "priority" or "type".
    pub tags: &'static str,
    /// Whether a read removes the data.
    pub destructive_read: bool,
    /// Whether data can be read without removing it.
    pub peek: bool,
    /// How it is named.
    pub naming: &'static str,
    /// Who can reach it.
    pub reach: &'static str,
    /// How long it lives.
    pub persistence: &'static str,
    /// Permission model.
    pub permissions: &'static str,
    /// Whether delivery is guaranteed.
    pub reliable: bool,
    /// What a crash of a process holding it leaves behind.
    pub after_crash: &'static str,
    /// Largest message on this machine, for message facilities.
    pub max_message: Option<String>,
    /// Limits in force on this machine.
    pub limits: Vec<Limit>,
    /// The largest message in bytes, for message facilities.
    #[serde(skip)]
    pub max_message_bytes: Option<usize>,
    /// The latency `unipc compare --bench` orders by; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured: Option<MeasuredLatency>,
}

/// A latency read from a bench report, and which figure it is.
#[derive(Clone, Debug, Serialize)]
pub struct MeasuredLatency {
    /// unipc's median round trip, in nanoseconds.
    pub p50_ns: f64,
    /// The figure it is, as in `64 B round trip p50, busy-poll, different CPUs`.
    pub figure: String,
}

impl FacilityRow {
    /// The row for `facility`, with its limits read now.
    pub fn of(facility: &Facility) -> FacilityRow {
        let p = &facility.properties;
        let cap = (facility.max_message)();
        FacilityRow {
            name: facility.name,
            summary: facility.summary,
            addressing: facility.addressing,
            shape: match p.shape {
                Shape::ByteStream => "byte stream",
                Shape::Messages => "messages",
                Shape::SharedMemory => "shared memory",
                Shape::Synchronization => "synchronization",
                _ => "other",
            },
            boundaries: p.shape == Shape::Messages,
            direction: match p.direction {
                Direction::OneWay => "one-way",
                Direction::TwoWay => "two-way",
                _ => "other",
            },
            tags: match p.tags {
                Tags::None => "none",
                Tags::Priority => "priority",
                Tags::Type => "type",
                Tags::Header => "priority or type (header)",
                _ => "other",
            },
            destructive_read: p.destructive_read,
            peek: p.peek,
            naming: match p.naming {
                Naming::None => "none (inherited fds)",
                Naming::FilesystemPath => "filesystem path",
                Naming::PathOrAbstract => "path or abstract name",
                Naming::IpcName => "IPC name (/name)",
                Naming::SysvKey => "System V key",
                Naming::NetworkAddress => "host:port",
                Naming::InSharedMemory => "a place in shared memory",
                Naming::AnyFile => "any file, by path",
                Naming::ServerSubject => "server and subject",
                _ => "other",
            },
            reach: match p.reach {
                Reach::RelatedProcesses => "related processes",
                Reach::Host => "any process on the host",
                Reach::Network => "other hosts",
                _ => "other",
            },
            persistence: match p.persistence {
                Persistence::Process => "process",
                Persistence::Kernel => "kernel",
                Persistence::Filesystem => "filesystem (name)",
                Persistence::Server => "server's store",
                _ => "other",
            },
            permissions: p.permissions,
            reliable: p.reliable,
            after_crash: p.after_crash,
            max_message: cap
                .as_ref()
                .map(|cap| format!("{} bytes ({})", cap.bytes, cap.set_by)),
            max_message_bytes: cap.as_ref().map(|cap| cap.bytes),
            measured: None,
            limits: (facility.limits)()
                .into_iter()
                .map(|l| Limit {
                    name: l.name.to_owned(),
                    value: l.value,
                    source: l.source.to_owned(),
                })
                .collect(),
        }
    }
}

/// Every facility's row.
pub fn rows() -> Vec<FacilityRow> {
    facility::all().iter().map(|f| FacilityRow::of(f)).collect()
}

/// A property `unipc compare --need` filters by: its name, what it means,
/// and the test on a facility's declared properties.
pub type Need = (&'static str, &'static str, fn(&Properties) -> bool);

/// The properties `--need` knows, from the facility metadata.
pub const NEEDS: &[Need] = &[
    ("boundaries", "keeps message boundaries", |p| {
        p.shape == Shape::Messages
    }),
    ("stream", "is a byte stream", |p| {
        p.shape == Shape::ByteStream
    }),
    (
        "sync",
        "a synchronization primitive (carries no data)",
        |p| p.shape == Shape::Synchronization,
    ),
    ("priorities", "messages carry a priority", |p| {
        p.tags == Tags::Priority
    }),
    ("types", "messages carry a type to select by", |p| {
        p.tags == Tags::Type
    }),
    ("two-way", "both sides send over one object", |p| {
        p.direction == Direction::TwoWay
    }),
    (
        "unrelated-processes",
        "processes that share no ancestor can meet by a name",
        |p| p.reach != Reach::RelatedProcesses,
    ),
    ("network", "reaches other hosts", |p| {
        p.reach == Reach::Network
    }),
    ("named", "found by a name or address", |p| {
        p.naming != Naming::None
    }),
    ("peek", "data can be read without removing it", |p| p.peek),
    ("reliable", "no loss under load", |p| p.reliable),
    (
        "persistent",
        "outlives every process that has it open",
        |p| matches!(p.persistence, Persistence::Kernel | Persistence::Server),
    ),
];

/// The facilities that have every property in `needs`.
///
/// # Errors
/// The first name that is not in [`NEEDS`].
pub fn with_needs(needs: &[String]) -> Result<Vec<&'static Facility>, String> {
    let tests: Vec<&Need> = needs
        .iter()
        .map(|name| {
            NEEDS
                .iter()
                .find(|(n, ..)| n == name)
                .ok_or_else(|| name.clone())
        })
        .collect::<Result<_, _>>()?;
    Ok(facility::all()
        .iter()
        .copied()
        .filter(|f| tests.iter().all(|(_, _, has)| has(&f.properties)))
        .collect())
}

/// Which latency figure of a bench report `--bench` orders by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyKey {
    /// Message size in bytes.
    pub size: u64,
    /// `"busy-poll"` or `"blocking"`.
    pub wait: &'static str,
    /// `"cross-cpu"` or `"same-cpu"`.
    pub placement: &'static str,
}

impl LatencyKey {
    /// The order of preference: busy-polling across CPUs shows the
    /// facility's own path (a blocking hand-off across CPUs costs the same
    /// wake-up whatever the facility), then one CPU, then blocking across.
    const PREFERENCE: [(&'static str, &'static str); 3] = [
        ("busy-poll", "cross-cpu"),
        ("blocking", "same-cpu"),
        ("blocking", "cross-cpu"),
    ];

    /// `64 B round trip p50, busy-poll, different CPUs`.
    pub fn describe(&self) -> String {
        format!(
            "{} round trip p50, {}, {}",
            crate::text::bytes(self.size as usize),
            self.wait,
            if self.placement == "cross-cpu" {
                "different CPUs"
            } else {
                "one CPU"
            }
        )
    }
}

/// unipc's p50 round trip for `facility` in `report` (a `unipc bench
/// --json` document) under `key`, if measured.
fn latency_in(report: &serde_json::Value, facility: &str, key: &LatencyKey) -> Option<f64> {
    report["results"].as_array()?.iter().find_map(|r| {
        let matches = r["facility"] == facility
            && r["workload"] == "latency"
            && r["size"].as_u64() == Some(key.size)
            && r["wait"] == key.wait
            && r["placement"] == key.placement;
        if !matches {
            return None;
        }
        r["outcome"]["measured"]["unipc"]["latency"]["p50"]["median"].as_f64()
    })
}

/// Orders `rows` by the latency `report` measured, fastest first, and
/// fills in [`FacilityRow::measured`]; rows without the figure go last.
/// The figure is the one most of the rows have, preferring 64 B (else
/// the smallest size measured), busy-poll across CPUs, then one CPU, then
/// blocking across CPUs. Returns the key used, or `None` when the report
/// has no latency figure for any row.
///
/// # Errors
/// When `report` is not a `unipc bench --json` document.
pub fn order_by_latency(
    rows: &mut [FacilityRow],
    report: &serde_json::Value,
) -> Result<Option<LatencyKey>, String> {
    let schema = report["schema"].as_str().unwrap_or("");
    if !schema.starts_with("unipc-bench/") || !report["results"].is_array() {
        return Err("not a unipc bench --json report (no schema unipc-bench/N)".to_owned());
    }
    let mut sizes: Vec<u64> = report["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["workload"] == "latency")
        .filter_map(|r| r["size"].as_u64())
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    if let Some(i) = sizes.iter().position(|&s| s == 64) {
        sizes.swap(0, i);
        sizes[1..].sort_unstable();
    }
    let mut best: Option<(usize, LatencyKey)> = None;
    for &size in &sizes {
        for (wait, placement) in LatencyKey::PREFERENCE {
            let key = LatencyKey {
                size,
                wait,
                placement,
            };
            let covered = rows
                .iter()
                .filter(|r| latency_in(report, r.name, &key).is_some())
                .count();
            if covered > best.map_or(0, |(n, _)| n) {
                best = Some((covered, key));
            }
        }
    }
    let Some((_, key)) = best else {
        return Ok(None);
    };
    for row in rows.iter_mut() {
        row.measured = latency_in(report, row.name, &key).map(|p50_ns| MeasuredLatency {
            p50_ns,
            figure: key.describe(),
        });
    }
    rows.sort_by(|a, b| {
        let (a, b) = (
            a.measured.as_ref().map(|m| m.p50_ns),
            b.measured.as_ref().map(|m| m.p50_ns),
        );
        match (a, b) {
            (Some(a), Some(b)) => a.total_cmp(&b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
    });
    Ok(Some(key))
}

/// 64 B, 8K, 208K (KiB, rounded), 2M: short enough for a table cell.
fn short_bytes(n: usize) -> String {
    if n < 1 << 10 {
        format!("{n} B")
    } else if n < 1 << 20 {
        format!("{}K", (n + 512) >> 10)
    } else {
        format!("{}M", (n + (1 << 19)) >> 20)
    }
}

/// The side-by-side table: one facility per row, its properties in
/// abbreviated columns (a legend follows), and with `key` the measured
/// latency the rows are ordered by. Fits 100 columns.
pub fn table(rows: &[FacilityRow], key: Option<&LatencyKey>) -> String {
    let mut header: Vec<String> = [
        "facility", "shape", "dir", "tags", "naming", "reach", "lives", "reliable", "peek",
        "max msg",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if key.is_some() {
        header.push("p50 rtt".to_owned());
    }
    let mut table = vec![header];
    for r in rows {
        let f = facility::find(r.name);
        let p = f.map(|f| f.properties);
        let mut line = vec![
            r.name.to_owned(),
            if p.is_some_and(|p| p.shape == Shape::Synchronization) {
                "sync"
            } else if p.is_some_and(|p| p.shape == Shape::SharedMemory) {
                "memory"
            } else if r.boundaries {
                "msgs"
            } else {
                "stream"
            }
            .to_owned(),
            match p.map(|p| p.direction) {
                Some(Direction::OneWay) => "1-way",
                _ => "2-way",
            }
            .to_owned(),
            match p.map(|p| p.tags) {
                Some(Tags::Priority) => "prio",
                Some(Tags::Type) => "type",
                Some(Tags::Header) => "hdr",
                _ => "-",
            }
            .to_owned(),
            match p.map(|p| p.naming) {
                Some(Naming::None) | None => "fds",
                Some(Naming::FilesystemPath) => "path",
                Some(Naming::PathOrAbstract) => "path|abs",
                Some(Naming::IpcName) => "/name",
                Some(Naming::SysvKey) => "key",
                Some(Naming::NetworkAddress) => "ip:port",
                Some(Naming::InSharedMemory) => "in shm",
                Some(Naming::AnyFile) => "file",
                Some(Naming::ServerSubject) => "srv/subj",
                Some(_) => "other",
            }
            .to_owned(),
            match p.map(|p| p.reach) {
                Some(Reach::RelatedProcesses) | None => "related",
                Some(Reach::Host) => "host",
                Some(Reach::Network) => "network",
                Some(_) => "other",
            }
            .to_owned(),
            match p.map(|p| p.persistence) {
                Some(Persistence::Process) | None => "process",
                Some(Persistence::Kernel) => "kernel",
                Some(Persistence::Filesystem) => "fs name",
                Some(Persistence::Server) => "server",
                Some(_) => "other",
            }
            .to_owned(),
            yes_no(r.reliable).to_owned(),
            yes_no(r.peek).to_owned(),
            match (r.max_message_bytes, p.map(|p| p.shape)) {
                (Some(bytes), _) => short_bytes(bytes),
                (None, Some(Shape::ByteStream)) => "any".to_owned(),
                // Shared memory holds what fits; a primitive carries nothing.
                _ => "-".to_owned(),
            },
        ];
        if key.is_some() {
            line.push(
                r.measured
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |m| crate::text::nanos(m.p50_ns)),
            );
        }
        table.push(line);
    }
    let mut out = crate::text::grid(&table);
    out.push_str(LEGEND);
    if let Some(key) = key {
        out.push_str(&format!(
            "p50 rtt (fastest first): unipc's {}, from --bench\n",
            key.describe()
        ));
    }
    out
}

/// What the table's abbreviations mean (each line under 100 columns).
const LEGEND: &str = "\
shape: byte stream, whole messages, shared memory or sync (a primitive that carries no data);
dir: one-way or two-way per object; tags: prio(rity) or type carried by each message;
naming: fds = inherited descriptors, path|abs = path or abstract name, /name = POSIX IPC name,
  key = System V key, in shm = a place in shared memory, file = any file by its path;
reach: related = inherited only, host = any process here; lives: process = until last close,
  kernel = until removed, fs name = name stays until removed; max msg: largest message on
  this machine (K = KiB; any = byte stream). Every property and limit: unipc compare --long
";

/// A property's label and how to read it from a row.
type Property = (&'static str, fn(&FacilityRow) -> String);

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Every property of every facility, one block per facility
/// (`unipc compare --long`).
pub fn render_text(rows: &[FacilityRow]) -> String {
    let props: [Property; 12] = [
        ("shape", |r| r.shape.to_owned()),
        ("boundaries", |r| yes_no(r.boundaries).to_owned()),
        ("direction", |r| r.direction.to_owned()),
        ("priorities/types", |r| r.tags.to_owned()),
        ("destructive read", |r| {
            yes_no(r.destructive_read).to_owned()
        }),
        ("peek", |r| yes_no(r.peek).to_owned()),
        ("naming", |r| r.naming.to_owned()),
        ("reach", |r| r.reach.to_owned()),
        ("persistence", |r| r.persistence.to_owned()),
        ("permissions", |r| r.permissions.to_owned()),
        ("reliable delivery", |r| yes_no(r.reliable).to_owned()),
        ("after a crash", |r| r.after_crash.to_owned()),
    ];
    let mut out = String::new();
    for row in rows {
        out.push_str(&format!(
            "{} — {}\n  address: {}\n",
            row.name, row.summary, row.addressing
        ));
        for (label, get) in &props {
            out.push_str(&format!("  {label:<18} {}\n", get(row)));
        }
        if let Some(max) = &row.max_message {
            out.push_str(&format!("  {:<18} {max}\n", "largest message"));
        }
        for limit in &row.limits {
            out.push_str(&format!(
                "  {:<18} {} = {} ({})\n",
                "limit", limit.name, limit.value, limit.source
            ));
        }
        out.push('\n');
    }
    out.push_str(&summary_grid(rows));
    out
}

/// A compact grid: one line per facility, the properties that tell them
/// apart most.
pub fn summary_grid(rows: &[FacilityRow]) -> String {
    let header = [
        "facility",
        "shape",
        "dir",
        "tags",
        "naming",
        "reach",
        "persistence",
    ];
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        table.push(vec![
            r.name.to_owned(),
            r.shape.to_owned(),
            r.direction.to_owned(),
            r.tags.to_owned(),
            r.naming.to_owned(),
            r.reach.to_owned(),
            r.persistence.to_owned(),
        ]);
    }
    crate::text::grid(&table)
}
