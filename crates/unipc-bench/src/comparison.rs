//! `unipc bench --html FILE --comparison FILE`: the JSON that the
//! separate comparison crate (`comparison/`, schema `unipc-comparison/1`)
//! writes, shown as one more section of the HTML page. Only the fields
//! the page shows are read; anything else in the file is ignored.

use std::fmt::Write as _;

use serde::Deserialize;

use crate::html::esc;
use crate::text::{bytes, nanos, rate};

/// The schema this module reads.
pub const SCHEMA: &str = "unipc-comparison/1";

/// A comparison run, as `comparison/ --json` writes it.
#[derive(Debug, Deserialize)]
pub struct Comparison {
    /// `unipc-comparison/1`.
    pub schema: String,
    /// How it was measured, one sentence.
    pub method: String,
    /// One row per contender and size.
    pub latency: Vec<LatencyRow>,
    #[serde(default)]
    /// The in-place loan's size ratio, when both sizes ran.
    pub zero_copy: Option<ZeroCopy>,
    #[serde(default)]
    /// Ring copy throughput against `memcpy`, when it ran.
    pub throughput: Vec<ThroughputRow>,
}

/// One contender at one size.
#[derive(Debug, Deserialize)]
pub struct LatencyRow {
    /// What was measured, as the table names it.
    pub contender: String,
    /// Message size in bytes.
    pub size: usize,
    /// Median one-way latency (round trip / 2).
    pub one_way_p50_ns: f64,
    /// 99th percentile one-way latency (round trip / 2).
    pub one_way_p99_ns: f64,
}

/// The in-place loan at a large size against a small one.
#[derive(Debug, Deserialize)]
pub struct ZeroCopy {
    /// The small size, bytes.
    pub small: usize,
    /// The large size, bytes.
    pub large: usize,
    /// p50 at the large size over p50 at the small one.
    pub ratio_p50: f64,
}

/// Ring copy throughput against `memcpy` at one size.
#[derive(Debug, Deserialize)]
pub struct ThroughputRow {
    /// Message size in bytes.
    pub size: usize,
    /// Through the ring, 10^9 bytes a second.
    pub ring_gb_per_s: f64,
    /// Through one thread's `copy_from_slice`, 10^9 bytes a second.
    pub memcpy_gb_per_s: f64,
}

/// Parses a comparison file's contents.
///
/// # Errors
/// A message naming what is wrong: not JSON of this shape, or another
/// schema.
pub fn parse(text: &str) -> Result<Comparison, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    // The schema first: a file of another schema says so, not which of
    // this schema's fields it lacks.
    match value.get("schema").and_then(|s| s.as_str()) {
        Some(SCHEMA) => {}
        Some(other) => return Err(format!("schema {other:?}, expected {SCHEMA:?}")),
        None => return Err(format!("no \"schema\": not a comparison report ({SCHEMA})")),
    }
    serde_json::from_value(value).map_err(|e| format!("not a comparison report: {e}"))
}

/// The page section: the latency table, the zero-copy ratio, the
/// throughput table.
pub fn html(c: &Comparison) -> String {
    let mut s = String::from("<h2>Against other Rust IPC crates</h2>");
    let _ = write!(s, "<p>{}</p>", esc(&c.method));
    s.push_str(
        "<table><tr><th>contender</th><th>size</th><th>one-way p50</th><th>one-way p99</th></tr>",
    );
    for row in &c.latency {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&row.contender),
            bytes(row.size),
            nanos(row.one_way_p50_ns),
            nanos(row.one_way_p99_ns)
        );
    }
    s.push_str("</table>");
    if let Some(z) = &c.zero_copy {
        let _ = write!(
            s,
            "<p>Zero copy: the ring's in-place loan, p50 at {} over p50 at {}: x{}</p>",
            bytes(z.large),
            bytes(z.small),
            rate(z.ratio_p50)
        );
    }
    if !c.throughput.is_empty() {
        s.push_str("<table><tr><th>size</th><th>ring copy GB/s</th><th>memcpy GB/s</th></tr>");
        for row in &c.throughput {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                bytes(row.size),
                rate(row.ring_gb_per_s),
                rate(row.memcpy_gb_per_s)
            );
        }
        s.push_str("</table>");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comparison_renders_escaped_and_another_schema_is_refused() {
        let text = r#"{"schema":"unipc-comparison/1","method":"ping <pong>","cpus":2,
            "latency":[{"contender":"a & b","id":"x","size":8192,"one_way_p50_ns":1500.0,
            "one_way_p99_ns":2000.0}],
            "zero_copy":{"small":64,"large":4194304,"ratio_p50":0.97},
            "throughput":[{"size":65536,"ring_gb_per_s":19.3,"memcpy_gb_per_s":47.7}]}"#;
        let page = html(&parse(text).unwrap());
        assert!(page.contains("a &amp; b") && page.contains("ping &lt;pong&gt;"));
        assert!(page.contains("8 KiB") && page.contains("1.500 µs") && page.contains("x0.97"));
        assert!(page.contains("<td>64 KiB</td><td>19.3</td><td>47.7</td>"));
        let other = text.replace("unipc-comparison/1", "unipc-comparison/9");
        assert!(parse(&other).unwrap_err().contains("unipc-comparison/9"));
        assert!(parse("[]").is_err());
    }
}
