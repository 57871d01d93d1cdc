//! `unipc compare`: the facilities' properties side by side, built from the
//! metadata each facility declares in the library (so it cannot drift from
//! the code) and the limits read live from this machine.

use serde::Serialize;
use unipc::facility::{self, Direction, Facility, Naming, Persistence, Reach, Shape, Tags};

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
    /// Largest message on this machine, for message facilities.
    pub max_message: Option<String>,
    /// Limits in force on this machine.
    pub limits: Vec<Limit>,
}

impl FacilityRow {
    /// The row for `facility`, with its limits read now.
    pub fn of(facility: &Facility) -> FacilityRow {
        let p = &facility.properties;
        FacilityRow {
            name: facility.name,
            summary: facility.summary,
            addressing: facility.addressing,
            shape: match p.shape {
                Shape::ByteStream => "byte stream",
                Shape::Messages => "messages",
            },
            boundaries: p.shape == Shape::Messages,
            direction: match p.direction {
                Direction::OneWay => "one-way",
                Direction::TwoWay => "two-way",
            },
            tags: match p.tags {
                Tags::None => "none",
                Tags::Priority => "priority",
                Tags::Type => "type",
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
            },
            reach: match p.reach {
                Reach::RelatedProcesses => "related processes",
                Reach::Host => "any process on the host",
                Reach::Network => "other hosts",
            },
            persistence: match p.persistence {
                Persistence::Process => "process",
                Persistence::Kernel => "kernel",
                Persistence::Filesystem => "filesystem (name)",
            },
            permissions: p.permissions,
            reliable: p.reliable,
            max_message: (facility.max_message)()
                .map(|cap| format!("{} bytes ({})", cap.bytes, cap.set_by)),
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

/// A property's label and how to read it from a row.
type Property = (&'static str, fn(&FacilityRow) -> String);

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// The properties as a text table: one column per facility, one row per
/// property (facilities outnumber properties less than they are wide).
pub fn render_text(rows: &[FacilityRow]) -> String {
    let props: [Property; 11] = [
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
