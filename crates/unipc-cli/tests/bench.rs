//! `unipc bench` and `unipc compare`, run as a user would: the built binary.

use std::process::Command;

fn unipc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_unipc"))
}

fn facility_names() -> Vec<String> {
    facility_rows()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The facilities the bench's tables measure: all but the synchronization
/// primitives.
fn measured_facility_names() -> Vec<String> {
    facility_rows()
        .iter()
        // No data to carry: a lock or a semaphore has no link to measure
        // (the hand-off section measures them).
        .filter(|r| r["shape"] != "synchronization")
        // A server's stream (NATS) needs the server: the bench has no
        // link to it yet.
        .filter(|r| r["persistence"] != "server's store")
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

fn facility_rows() -> Vec<serde_json::Value> {
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
    rows.as_array().expect("an array of facilities").clone()
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
        "shm",
        "sysv-shm",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "compare lacks {expected}: {names:?}"
        );
    }
    let out = unipc().args(["compare", "--long"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for property in ["shape", "naming", "reach", "persistence", "limit"] {
        assert!(text.contains(property), "compare --long lacks {property}");
    }
}

fn compare(args: &[&str]) -> (Option<i32>, String, String) {
    let out = unipc().arg("compare").args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn compare_names(args: &[&str]) -> Vec<String> {
    let (code, stdout, stderr) = compare(&[&["--json"], args].concat());
    assert_eq!(code, Some(0), "{stderr}");
    let rows: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The names in the first column of the table, in order.
fn table_names(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(2)
        .map_while(|l| l.split_whitespace().next().filter(|w| !w.ends_with(':')))
        .map(str::to_owned)
        .collect()
}

fn assert_fits(table: &str) {
    for line in table.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line:?}",
            line.chars().count()
        );
    }
}

#[test]
fn compare_prints_one_table_that_fits_100_columns() {
    let (code, table, _) = compare(&[]);
    assert_eq!(code, Some(0));
    assert_fits(&table);
    let header = table.lines().next().unwrap();
    for column in [
        "facility", "shape", "dir", "tags", "naming", "reach", "lives", "reliable",
    ] {
        assert!(header.contains(column), "{header}");
    }
    assert_eq!(table_names(&table), facility_names(), "{table}");
}

#[test]
fn compare_need_keeps_the_facilities_with_every_property() {
    assert_eq!(
        compare_names(&["--need", "boundaries,priorities"]),
        ["posix-mq"]
    );
    assert_eq!(compare_names(&["--need", "types"]), ["sysv-mq"]);
    // Repeated and comma-separated forms mean the same.
    let kept = compare_names(&["--need", "unrelated-processes", "--need", "stream"]);
    assert_eq!(
        kept,
        compare_names(&["--need", "unrelated-processes,stream"])
    );
    assert!(kept.contains(&"unix".to_owned()) && kept.contains(&"fifo".to_owned()));
    assert!(!kept.contains(&"pipe".to_owned()) && !kept.contains(&"socketpair".to_owned()));
    assert!(!kept.contains(&"posix-mq".to_owned()));
    let (code, table, _) = compare(&["--need", "reliable,boundaries"]);
    assert_eq!(code, Some(0));
    let names = table_names(&table);
    assert!(!names.contains(&"udp".to_owned()) && names.contains(&"sysv-mq".to_owned()));
    let (code, text, _) = compare(&["--need", "network,priorities"]);
    assert_eq!(code, Some(0));
    assert!(text.contains("No facility"), "{text}");
    assert_eq!(
        compare_names(&["--need", "network,priorities"]),
        Vec::<String>::new()
    );
}

#[test]
fn compare_refuses_an_unknown_property_listing_the_known_ones() {
    let (code, stdout, stderr) = compare(&["--need", "boundaries,telepathy"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("telepathy"), "{stderr}");
    for known in [
        "boundaries",
        "priorities",
        "unrelated-processes",
        "persistent",
    ] {
        assert!(stderr.contains(known), "{stderr}");
    }
    // The --help text lists the same vocabulary as the error.
    let known = stderr.trim().rsplit("properties: ").next().unwrap();
    let help = unipc().args(["compare", "--help"]).output().unwrap().stdout;
    let help = String::from_utf8(help).unwrap().replace('\n', " ");
    for name in known.split(", ") {
        assert!(help.contains(name), "--help lacks {name}");
    }
}

/// A bench report with unipc's p50 latency for some facilities.
fn crafted_report(figures: &[(&str, &str, &str, u64, f64)]) -> serde_json::Value {
    let results: Vec<serde_json::Value> = figures
        .iter()
        .map(|(facility, wait, placement, size, p50)| {
            let side = serde_json::json!({ "latency": {
                "p50": { "median": p50, "min": p50, "max": p50 },
                "p99": { "median": p50, "min": p50, "max": p50 },
                "p999": { "median": p50, "min": p50, "max": p50 },
                "max": { "median": p50, "min": p50, "max": p50 },
                "samples": 100 } });
            serde_json::json!({
                "facility": facility, "wait": wait, "placement": placement,
                "workload": "latency", "size": size,
                "outcome": { "measured": { "unipc": side, "raw": side, "overhead": 1.0,
                    "wide_spread": false, "pairs": 3, "ratio_spread": 0.01, "noisy": false } }
            })
        })
        .collect();
    serde_json::json!({ "schema": "unipc-bench/2", "results": results })
}

#[test]
fn compare_bench_orders_by_the_measured_latency_and_says_which() {
    let dir = tempfile::Builder::new()
        .prefix("unipc-test-compare")
        .tempdir()
        .unwrap();
    let file = dir.path().join("bench.json");
    let report = crafted_report(&[
        ("pipe", "busy-poll", "cross-cpu", 64, 3000.0),
        ("unix", "busy-poll", "cross-cpu", 64, 2000.0),
        ("sysv-mq", "busy-poll", "cross-cpu", 64, 1000.0),
        ("posix-mq", "busy-poll", "cross-cpu", 1024, 10.0),
        // Another scenario must not mix in: pipe would come first here.
        ("pipe", "blocking", "same-cpu", 64, 1.0),
    ]);
    std::fs::write(&file, report.to_string()).unwrap();
    let path = file.to_str().unwrap();
    let (code, table, stderr) = compare(&["--bench", path]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_fits(&table);
    let names = table_names(&table);
    assert_eq!(names[..3], ["sysv-mq", "unix", "pipe"], "{table}");
    assert_eq!(names.len(), facility_names().len());
    assert!(
        table.contains("64 B round trip p50, busy-poll, different CPUs"),
        "{table}"
    );
    assert!(
        table.contains("1.000 µs") && table.contains("3.000 µs"),
        "{table}"
    );

    // Filtered and ordered together; the JSON carries the figure.
    let (code, json, _) = compare(&["--json", "--need", "boundaries", "--bench", path]);
    assert_eq!(code, Some(0));
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(rows[0]["name"], "sysv-mq");
    assert_eq!(rows[0]["measured"]["p50_ns"], 1000.0);
    assert!(rows
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["boundaries"] == true));

    // Without busy-poll figures, it falls back and says so.
    std::fs::write(
        &file,
        crafted_report(&[
            ("tcp", "blocking", "same-cpu", 64, 5000.0),
            ("fifo", "blocking", "same-cpu", 64, 4000.0),
        ])
        .to_string(),
    )
    .unwrap();
    let (code, table, _) = compare(&["--bench", path]);
    assert_eq!(code, Some(0));
    assert_eq!(table_names(&table)[..2], ["fifo", "tcp"], "{table}");
    assert!(
        table.contains("64 B round trip p50, blocking, one CPU"),
        "{table}"
    );

    // Not a bench report: a runtime error naming the file.
    std::fs::write(&file, "{\"schema\": \"something-else\"}").unwrap();
    let (code, _, stderr) = compare(&["--bench", path]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains(path), "{stderr}");
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
    assert_eq!(report["schema"], "unipc-bench/4");
    assert!(
        report["copy_or_map"].is_null(),
        "a --quick run leaves copy-or-map out"
    );
    let results = report["results"].as_array().unwrap();
    for name in measured_facility_names() {
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

/// The hand-off section, named alone in a quick run: a finite round trip
/// through unipc and through the raw calls for each primitive the library
/// has, in each scenario this machine can place.
#[test]
fn quick_hand_off_gives_every_primitive_a_figure() {
    let dir = tempfile::Builder::new()
        .prefix("unipc-test-bench")
        .tempdir()
        .unwrap();
    let json = dir.path().join("bench.json");
    let out = unipc()
        .args(["bench", "--quick", "--facility", "hand-off", "--json"])
        .arg(&json)
        .output()
        .expect("run unipc bench --facility hand-off");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(report["results"].as_array().unwrap().is_empty());
    let section = &report["hand_off"];
    assert!(section["skipped"].is_null(), "{section}");
    let figures = section["figures"].as_array().unwrap();
    for primitive in HAND_OFF_PRIMITIVES {
        let mine: Vec<_> = figures
            .iter()
            .filter(|f| f["primitive"] == *primitive)
            .collect();
        // Blocking on one CPU runs everywhere.
        assert!(
            mine.iter()
                .any(|f| f["wait"] == "blocking" && f["placement"] == "same-cpu"),
            "no blocking same-CPU figure for {primitive}: {section}"
        );
        for f in mine {
            for side in ["unipc_p50_ns", "raw_p50_ns"] {
                let v = f[side]["median"].as_f64().unwrap();
                assert!(v.is_finite() && v > 0.0, "{primitive} {side}: {f}");
            }
        }
        assert!(
            stdout.contains(primitive),
            "the table lacks {primitive}:\n{stdout}"
        );
    }
}

/// The primitives the hand-off section measures.
const HAND_OFF_PRIMITIVES: &[&str] =
    &["posix-sem", "sysv-sem", "eventfd", "futex", "mutex-condvar"];

/// The copy-or-map section, named alone in a quick run (4 KiB and 1 MiB):
/// a finite figure for every method at every size, and both crossover
/// fields (a size or null), never a speed.
#[test]
fn quick_copy_or_map_gives_every_method_and_size_a_figure() {
    let dir = tempfile::Builder::new()
        .prefix("unipc-test-bench")
        .tempdir()
        .unwrap();
    let json = dir.path().join("bench.json");
    let out = unipc()
        .args(["bench", "--quick", "--facility", "copy-or-map", "--json"])
        .arg(&json)
        .output()
        .expect("run unipc bench --facility copy-or-map");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["schema"], "unipc-bench/4");
    assert!(report["results"].as_array().unwrap().is_empty());
    let section = &report["copy_or_map"];
    assert!(section["skipped"].is_null(), "{section}");
    let sizes: Vec<u64> = section["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [4096, 1 << 20]);
    let figures = section["figures"].as_array().unwrap();
    for method in ["pipe", "unix-stream", "fresh-memfd", "reused-mapping"] {
        for size in &sizes {
            let figure = figures
                .iter()
                .find(|f| f["method"] == method && f["size"] == *size)
                .unwrap_or_else(|| panic!("no {method} figure at {size}: {section}"));
            for field in ["median_ns", "min_ns", "max_ns"] {
                let v = figure[field].as_f64().unwrap();
                assert!(v.is_finite() && v > 0.0, "{method} {size} {field}: {v}");
            }
        }
        assert!(
            stdout.contains(method),
            "the table lacks {method}:\n{stdout}"
        );
    }
    for field in ["crossover_fresh", "crossover_reused"] {
        let c = &section[field];
        assert!(
            c.is_null() || c.as_u64().is_some_and(|c| sizes.contains(&c)),
            "{field}: {c}"
        );
    }
    assert!(stdout.contains("crossover"), "{stdout}");
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

/// Processes of one interrupted run: found by the private `TMPDIR` in their
/// environment, so the bench's peers and reaper count whoever their parent
/// is by now.
mod run_tree {
    use std::collections::BTreeSet;
    use std::path::Path;

    /// Pids of live (not zombie) processes whose environment holds
    /// `TMPDIR=tmpdir`, with their command lines.
    pub fn processes(tmpdir: &Path) -> Vec<(u32, Vec<String>)> {
        let wanted = format!("TMPDIR={}", tmpdir.display());
        let mut found = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return found;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
                continue;
            };
            if !environ.split(|&b| b == 0).any(|v| v == wanted.as_bytes()) {
                continue;
            }
            let zombie = std::fs::read_to_string(entry.path().join("stat"))
                .map(|s| {
                    s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(true);
            if zombie {
                continue;
            }
            let args = std::fs::read(entry.path().join("cmdline"))
                .unwrap_or_default()
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            found.push((pid, args));
        }
        found
    }

    /// One System V queue: `msqid`, `key`, `lspid`, `lrpid` and `ctime`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    pub struct Queue {
        pub id: i32,
        pub key: i64,
        pub last_sender: u32,
        pub last_receiver: u32,
        pub changed: u64,
    }

    /// Every System V queue on the host.
    pub fn queues() -> BTreeSet<Queue> {
        std::fs::read_to_string("/proc/sysvipc/msg")
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                Some(Queue {
                    key: f.first()?.parse().ok()?,
                    id: f.get(1)?.parse().ok()?,
                    last_sender: f.get(5)?.parse().ok()?,
                    last_receiver: f.get(6)?.parse().ok()?,
                    changed: f.get(13)?.parse().ok()?,
                })
            })
            .collect()
    }

    /// The POSIX queues of the links the run `pid` made that still exist,
    /// which it then unlinks (the connector names them
    /// `/unipc-link-PID-N-to-peer` and `-from-peer`).
    pub fn posix_queues_of(pid: u32) -> Vec<String> {
        use unipc::message::posix_mq;
        let mut left = Vec::new();
        for n in 0..32 {
            for way in ["to-peer", "from-peer"] {
                let text = format!("/unipc-link-{pid}-{n}-{way}");
                let name = unipc::name::PosixName::new(&text).unwrap();
                if posix_mq::Queue::open(&name).is_ok() {
                    let _ = posix_mq::unlink(&name);
                    left.push(text);
                }
            }
        }
        left
    }

    /// The System V segments and semaphore sets a peer was handed: the
    /// segment of a `sysv-shm ID` link, the segment and set of the
    /// hand-off section (`hand-off SEGMENT SET FD FD`).
    pub fn peer_ipc_ids(args: &[String]) -> (Vec<i32>, Vec<i32>) {
        let Some(i) = args.iter().position(|a| a == "__bench-peer") else {
            return (Vec::new(), Vec::new());
        };
        let id = |k: usize| args.get(i + k).and_then(|a| a.parse::<i32>().ok());
        match args.get(i + 1).map(String::as_str) {
            Some("sysv-shm") => (id(2).into_iter().collect(), Vec::new()),
            Some("hand-off") => (id(2).into_iter().collect(), id(3).into_iter().collect()),
            _ => (Vec::new(), Vec::new()),
        }
    }

    /// Identifiers of the System V segments (`kind` "shm") or semaphore
    /// sets ("sem") on the host now.
    pub fn sysv_ids(kind: &str) -> BTreeSet<i32> {
        std::fs::read_to_string(format!("/proc/sysvipc/{kind}"))
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|line| line.split_whitespace().nth(1)?.parse().ok())
            .collect()
    }

    /// The POSIX shared-memory objects of the links the run `pid` made
    /// that still exist (the connectors name them `/unipc-bench-PID-N`,
    /// a ring's `/unipc-bench-PID-ringN-to-peer` and `-from-peer`), which
    /// it then unlinks.
    pub fn posix_shm_of(pid: u32) -> Vec<String> {
        let prefix = format!("unipc-bench-{pid}-");
        let mut left = Vec::new();
        for entry in std::fs::read_dir("/dev/shm")
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
                left.push(name);
            }
        }
        left
    }

    /// The queue identifiers a System V peer was handed (`sysv-mq A,B`).
    pub fn peer_queue_ids(args: &[String]) -> Vec<i32> {
        match args.iter().position(|a| a == "sysv-mq") {
            Some(i) if args.iter().any(|a| a == "__bench-peer") => args
                .get(i + 1)
                .map(|ids| ids.split(',').filter_map(|id| id.parse().ok()).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

/// Interrupts `unipc bench --quick` at several moments with SIGINT, SIGTERM
/// and SIGKILL and checks the run left nothing: no file in its private
/// TMPDIR, no POSIX queue, no System V queue its processes created or used, no process.
#[test]
fn an_interrupted_or_killed_bench_leaves_nothing_behind() {
    use std::time::{Duration, Instant};

    let queues_before = run_tree::queues();
    let started_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut pids = std::collections::BTreeSet::new();
    let mut queue_ids = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    let mut segment_ids = std::collections::BTreeSet::new();
    let mut set_ids = std::collections::BTreeSet::new();
    for facility in [
        "sysv-mq",
        "posix-mq",
        "unix",
        "copy-or-map",
        "sysv-shm",
        "shm",
        "ring",
        "pubsub",
        "hand-off",
    ] {
        for (signal, name) in [
            (libc::SIGINT, "SIGINT"),
            (libc::SIGTERM, "SIGTERM"),
            (libc::SIGKILL, "SIGKILL"),
        ] {
            for delay_ms in [3u64, 12, 25, 45, 70] {
                let tmpdir = tempfile::Builder::new()
                    .prefix("unipc-test-interrupt")
                    .tempdir()
                    .unwrap();
                let mut child = unipc()
                    .args(["bench", "--quick", "--facility", facility, "--json"])
                    .arg(tmpdir.path().join("report.json"))
                    .env("TMPDIR", tmpdir.path())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                pids.insert(child.id());
                // Watch the run's processes until the moment comes, to
                // learn the peers' pids and queue identifiers.
                let start = Instant::now();
                while start.elapsed() < Duration::from_millis(delay_ms) {
                    for (pid, args) in run_tree::processes(tmpdir.path()) {
                        pids.insert(pid);
                        queue_ids.extend(run_tree::peer_queue_ids(&args));
                        let (segments, sets) = run_tree::peer_ipc_ids(&args);
                        segment_ids.extend(segments);
                        set_ids.extend(sets);
                    }
                }
                // SAFETY: kill(2) on our own child, which is not reaped yet.
                unsafe { libc::kill(child.id() as i32, signal) };
                let deadline = Instant::now() + Duration::from_secs(10);
                let status = loop {
                    if let Some(status) = child.try_wait().unwrap() {
                        break status;
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        break child.wait().unwrap();
                    }
                    std::thread::sleep(Duration::from_millis(2));
                };
                // The reaper and a dying peer may take a moment.
                let deadline = Instant::now() + Duration::from_secs(3);
                let mut left = run_tree::processes(tmpdir.path());
                while !left.is_empty() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                    left = run_tree::processes(tmpdir.path());
                }
                let case = format!("{facility}, {name} after {delay_ms} ms ({status})");
                if !left.is_empty() {
                    failures.push(format!("{case}: processes left: {left:?}"));
                    for (pid, _) in &left {
                        // SAFETY: kill(2) on a leftover of this test's run.
                        unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
                    }
                }
                // The report exists if the run finished; nothing else may.
                let files: Vec<_> = std::fs::read_dir(tmpdir.path())
                    .unwrap()
                    .flatten()
                    .map(|e| e.file_name())
                    .filter(|name| !(status.success() && name == "report.json"))
                    .collect();
                if !files.is_empty() {
                    failures.push(format!("{case}: left in TMPDIR: {files:?}"));
                }
                let names = run_tree::posix_queues_of(child.id());
                if !names.is_empty() {
                    failures.push(format!("{case}: POSIX queues left: {names:?}"));
                }
                let names = run_tree::posix_shm_of(child.id());
                if !names.is_empty() {
                    failures.push(format!("{case}: POSIX shared memory left: {names:?}"));
                }
                // A signal that came before the bench took the signals over
                // ends it by the default action; it had created nothing yet.
                use std::os::unix::process::ExitStatusExt;
                let code = status.code();
                let expected = status.signal() == Some(signal)
                    || (signal != libc::SIGKILL && (code == Some(0) || code == Some(128 + signal)));
                eprintln!("{case}");
                if !expected {
                    failures.push(format!("{case}: unexpected exit"));
                }
            }
        }
    }
    // A queue of the run is one a peer was handed, one a process of the
    // run used, or a private queue nobody used that appeared during the
    // test and stays (one created in the moment before a peer existed).
    let since = started_at - 1;
    let is_new = |q: &run_tree::Queue| !queues_before.iter().any(|b| b.id == q.id);
    let unused_private = |q: &run_tree::Queue| {
        q.key == 0 && (q.last_sender, q.last_receiver) == (0, 0) && q.changed >= since
    };
    let mut leaked: Vec<_> = run_tree::queues()
        .into_iter()
        .filter(is_new)
        .filter(|q| {
            queue_ids.contains(&q.id)
                || pids.contains(&q.last_sender)
                || pids.contains(&q.last_receiver)
                || unused_private(q)
        })
        .collect();
    if leaked.iter().all(unused_private) && !leaked.is_empty() {
        // Perhaps another program's queue on its way to removal: look again.
        std::thread::sleep(Duration::from_millis(500));
        let now = run_tree::queues();
        leaked.retain(|q| now.contains(q));
    }
    for q in leaked.iter().filter(|q| !unused_private(q)) {
        // Leave the machine clean even when the test fails. (An unused
        // private queue is only probably the run's: it is reported, with
        // its identifier for ipcrm -q, and left alone.)
        let _ = std::process::Command::new("ipcrm")
            .args(["-q", &q.id.to_string()])
            .status();
    }
    eprintln!("queues handed to peers: {queue_ids:?}");
    // A segment or a set a peer was handed must be gone (a segment is
    // removed once the peer has attached; a set when the run ends).
    for (kind, handed) in [("shm", &segment_ids), ("sem", &set_ids)] {
        let left: Vec<i32> = run_tree::sysv_ids(kind)
            .intersection(handed)
            .copied()
            .collect();
        for id in &left {
            let flag = if kind == "shm" { "-m" } else { "-s" };
            let _ = std::process::Command::new("ipcrm")
                .args([flag, &id.to_string()])
                .status();
            failures.push(format!("System V {kind} {id} left"));
        }
    }
    eprintln!("segments and sets handed to peers: {segment_ids:?} {set_ids:?}");
    assert!(
        leaked.is_empty() && failures.is_empty(),
        "System V queues left: {leaked:?}\n{}",
        failures.join("\n")
    );
}

/// Runs `command` with a watchdog; `None` if it had to be killed.
fn output_within(mut command: Command, limit: std::time::Duration) -> Option<std::process::Output> {
    use std::process::Stdio;
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Some(child.wait_with_output().unwrap())
}

/// A report path that cannot be written fails the command before the
/// (minute-long) full run measures anything, naming the path, and leaves no
/// other report behind either.
#[test]
fn bench_checks_its_output_paths_before_measuring() {
    let dir = tempfile::Builder::new()
        .prefix("unipc-test-outputs")
        .tempdir()
        .unwrap();
    let missing_dir = dir.path().join("no-such-dir").join("report.html");
    let cases = [
        (
            "--json",
            dir.path().join("good.json"),
            "--html",
            missing_dir,
        ),
        (
            "--html",
            dir.path().join("good.html"),
            "--json",
            dir.path().to_path_buf(),
        ),
    ];
    for (good_option, good, option, bad) in &cases {
        let mut command = unipc();
        command
            .env("TMPDIR", dir.path())
            .arg("bench")
            .arg(good_option)
            .arg(good)
            .arg(option)
            .arg(bad);
        let out = output_within(command, std::time::Duration::from_secs(20))
            .expect("a bad output path must fail before the run, not after it");
        assert_eq!(out.status.code(), Some(1), "{option} {}", bad.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&bad.display().to_string()), "{err}");
        assert!(out.stdout.is_empty());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

/// A closed stdout is a normal end for every output of compare and bench.
#[test]
fn a_closed_stdout_ends_compare_and_bench_quietly() {
    for args in [
        &["compare"][..],
        &["compare", "--json"],
        &["compare", "--long"],
        &["bench", "--quick", "--facility", "pipe", "--size", "64"],
    ] {
        let (reader, writer) = rustix::pipe::pipe().unwrap();
        drop(reader);
        let out = unipc()
            .args(args)
            .stdout(std::process::Stdio::from(writer))
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stderr.is_empty() || args[0] == "bench", "{args:?}");
    }
}

/// A peer killed in the middle of a shared-memory link or of the hand-off
/// section, where nothing like an end of file tells the parent, must not
/// leave the bench asleep in a futex wait: it ends within seconds, and
/// leaves no segment or set behind.
#[test]
fn a_killed_shared_memory_peer_does_not_hang_the_bench() {
    use std::time::{Duration, Instant};
    // What each run says when its peer dies: a link's figure is skipped
    // naming the dead process; the hand-off section stops the run, told
    // either by its watch or, when it was reading the peer's next line, by
    // the end of that line's pipe.
    let hand_off_says: &[&str] = &["died; stopping", "hand-off peer exited"];
    for (facility, role, says) in [
        ("sysv-shm", "sysv-shm", &["has exited"][..]),
        // The ring's own waits report the dead side (PeerDied); the raw
        // baseline's mailbox watch reports the exit.
        ("ring", "ring", &["died", "has exited"][..]),
        ("pubsub", "pubsub", &["died", "has exited"][..]),
        ("hand-off", "hand-off", hand_off_says),
    ] {
        let tmpdir = tempfile::Builder::new()
            .prefix("unipc-test-peerkill")
            .tempdir()
            .unwrap();
        let mut child = unipc()
            .args(["bench", "--facility", facility, "--size", "64"])
            .env("TMPDIR", tmpdir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait for the peer to be at work, then kill it.
        let start = Instant::now();
        let handed;
        let peer = loop {
            let found = run_tree::processes(tmpdir.path())
                .into_iter()
                .find(|(_, args)| {
                    args.iter().any(|a| a == role) && args.iter().any(|a| a == "__bench-peer")
                });
            if let Some((pid, args)) = found {
                handed = run_tree::peer_ipc_ids(&args);
                std::thread::sleep(Duration::from_millis(300));
                break pid;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{facility}: no peer started"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        // SAFETY: kill(2) on the bench's peer, found by its TMPDIR.
        unsafe { libc::kill(peer as i32, libc::SIGKILL) };
        // A hang, not a slow run, is what this looks for: a generous limit.
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut output = String::new();
        use std::io::Read;
        let _ = child.stdout.take().unwrap().read_to_string(&mut output);
        let _ = child.stderr.take().unwrap().read_to_string(&mut output);
        assert!(
            status.is_some(),
            "{facility}: the bench hung after its peer died\n{output}"
        );
        assert!(
            says.iter().any(|said| output.contains(said)),
            "{facility}: no word of the peer's death:\n{output}"
        );
        for (kind, ids) in [("shm", &handed.0), ("sem", &handed.1)] {
            let now = run_tree::sysv_ids(kind);
            let left: Vec<_> = ids.iter().filter(|id| now.contains(id)).collect();
            assert!(
                left.is_empty(),
                "{facility}: System V {kind} left: {left:?}"
            );
        }
    }
}

/// `--comparison FILE` adds the comparison crate's figures to the HTML
/// page; a file that is missing or of another schema is refused before
/// anything is measured or written.
#[test]
fn bench_html_includes_a_comparison_file_and_refuses_a_bad_one() {
    let dir = tempfile::Builder::new()
        .prefix("unipc-test-comparison")
        .tempdir()
        .unwrap();
    let comparison = dir.path().join("comparison.json");
    std::fs::write(
        &comparison,
        r#"{"schema":"unipc-comparison/1","method":"ping-pong","latency":[
            {"contender":"iceoryx2 <pub/sub>","size":64,"one_way_p50_ns":630.0,"one_way_p99_ns":780.0}]}"#,
    )
    .unwrap();
    let html = dir.path().join("bench.html");
    let out = unipc()
        .args(["bench", "--quick", "--facility", "pipe", "--html"])
        .arg(&html)
        .arg("--comparison")
        .arg(&comparison)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Against other Rust IPC crates"));
    assert!(page.contains("<td>iceoryx2 &lt;pub/sub&gt;</td><td>64 B</td><td>630 ns</td>"));
    std::fs::remove_file(&html).unwrap();

    std::fs::write(&comparison, r#"{"schema":"unipc-bench/4"}"#).unwrap();
    let missing = dir.path().join("missing.json");
    for (bad, says) in [(&comparison, "unipc-bench/4"), (&missing, "missing.json")] {
        let out = unipc()
            .args(["bench", "--facility", "pipe", "--html"])
            .arg(&html)
            .arg("--comparison")
            .arg(bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
        assert!(out.stdout.is_empty() && !html.exists());
    }
}
