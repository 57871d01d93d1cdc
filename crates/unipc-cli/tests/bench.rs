//! `unipc bench` and `unipc compare`, run as a user would: the built binary.

use std::process::Command;

fn unipc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_unipc"))
}

fn facility_names() -> Vec<String> {
    let out = unipc()
        .args(["compare", "--json"])
        .output()
        .expect("run unipc compare --json");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("compare --json is JSON");
    rows.as_array()
        .expect("an array of facilities")
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn compare_lists_every_facility_with_its_properties() {
    let names = facility_names();
    for expected in [
        "pipe",
        "fifo",
        "unix",
        "socketpair",
        "unix-seqpacket",
        "tcp",
        "posix-mq",
        "sysv-mq",
        "unix-dgram",
        "udp",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "compare lacks {expected}: {names:?}"
        );
    }
    let out = unipc().arg("compare").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for property in ["shape", "naming", "reach", "persistence", "limit"] {
        assert!(text.contains(property), "compare text lacks {property}");
    }
}

/// The smoke test of the main job: a quick run end to end, asserting the
/// report's shape (every facility produced figures), never a speed.
#[test]
fn quick_bench_measures_every_facility() {
    let dir = tempfile::Builder::new()
        .prefix("unipc-test-bench")
        .tempdir()
        .unwrap();
    let json = dir.path().join("bench.json");
    let html = dir.path().join("bench.html");
    let out = unipc()
        .args(["bench", "--quick", "--json"])
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .output()
        .expect("run unipc bench --quick");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["schema"], "unipc-bench/1");
    let results = report["results"].as_array().unwrap();
    for name in facility_names() {
        let measured: Vec<&serde_json::Value> = results
            .iter()
            .filter(|r| r["facility"] == name.as_str() && r["outcome"].get("measured").is_some())
            .collect();
        assert!(
            !measured.is_empty(),
            "{name} produced no figures:\n{stdout}"
        );
        for m in &measured {
            let figures = &m["outcome"]["measured"];
            let overhead = figures["overhead"].as_f64().unwrap();
            assert!(
                overhead.is_finite() && overhead > 0.0,
                "{name}: overhead {overhead}"
            );
            assert!(figures["raw"].is_object() && figures["unipc"].is_object());
        }
        assert!(stdout.contains(&name), "the table lacks {name}");
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("</html>"));
}

#[test]
fn bench_refuses_unknown_facilities_and_bad_cpus_as_usage_errors() {
    let out = unipc()
        .args(["bench", "--facility", "carrier-pigeon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("carrier-pigeon") && err.contains("pipe"),
        "{err}"
    );

    let out = unipc().args(["bench", "--cpus", "0,999"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CPU 999 is not available"));
}
