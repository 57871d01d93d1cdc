//! `unipc ls`: the IPC objects on the host, one table or one JSON document
//! (schema `unipc-ls/1`).

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;

use serde_json::{json, Value};
use unipc::inventory::{
    Details, Holder, ListOptions, Listing, LockClass, Object, Pid, SocketState, Unreadable,
};

use crate::cli::LsArgs;
use crate::out;

/// The table's width: longer lines are cut, with `…`.
const WIDTH: usize = 100;

/// `unipc ls [--kind KIND...] [--path DIR...] [--json]`.
pub fn run(args: LsArgs) -> anyhow::Result<ExitCode> {
    let mut options = ListOptions::new().kinds(&args.kinds);
    for dir in &args.paths {
        options = options.fifo_dir(dir);
    }
    let listing = options.list()?;
    let users = Names::read("/etc/passwd");
    let text = if args.json {
        let mut doc = serde_json::to_string_pretty(&document(&listing, &users))?;
        doc.push('\n');
        doc
    } else {
        table(&listing, &users)
    };
    out::write_stdout(&mut std::io::stdout().lock(), text.as_bytes())?;
    if !args.json {
        report_unreadable(
            "ls",
            "the objects or holders they would show are missing above",
            &listing.unreadable,
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Says on stderr how many things `command` could not read, and the first
/// three (`--json` has them all).
pub(super) fn report_unreadable(command: &str, consequence: &str, unreadable: &[Unreadable]) {
    if unreadable.is_empty() {
        return;
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "unipc {command}: {} could not be read ({consequence}); --json lists all, the first:",
        unreadable.len()
    );
    for u in unreadable.iter().take(3) {
        let _ = writeln!(err, "  {}: {}", printable(&u.what), printable(&u.reason));
    }
}

/// Id to name, from a passwd-format file (a missing file: no names).
struct Names(HashMap<u32, String>);

impl Names {
    fn read(path: &str) -> Names {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        Names(
            text.lines()
                .filter_map(|l| {
                    let mut f = l.split(':');
                    let name = f.next()?;
                    let id = f.nth(1)?.parse().ok()?;
                    Some((id, name.to_owned()))
                })
                .collect(),
        )
    }

    fn get(&self, id: u32) -> Option<&str> {
        self.0.get(&id).map(String::as_str)
    }

    fn show(&self, id: u32) -> String {
        self.get(id).map_or_else(|| id.to_string(), str::to_owned)
    }
}

fn pid_json(p: &Pid) -> Value {
    if p.pid == 0 {
        Value::Null
    } else {
        json!({ "pid": p.pid, "alive": p.alive })
    }
}

fn holder_json(h: &Holder) -> Value {
    json!({
        "pid": h.pid, "command": h.command, "open": h.open, "mapped": h.mapped,
        "reading": h.reading, "writing": h.writing,
    })
}

fn holders_json(holders: &[Holder]) -> Vec<Value> {
    holders.iter().map(holder_json).collect()
}

fn state_text(state: SocketState) -> &'static str {
    match state {
        SocketState::Listening => "listening",
        SocketState::Bound => "bound",
        SocketState::Connected => "connected",
        _ => "other",
    }
}

fn class_text(class: LockClass) -> &'static str {
    match class {
        LockClass::Flock => "flock",
        LockClass::Posix => "posix",
        LockClass::Ofd => "ofd",
        LockClass::Lease => "lease",
        _ => "other",
    }
}

/// `holders=1(cat)rw,2(sh)m`: each holder with how it holds (`o` open,
/// `m` mapped, `r`/`w` reading, writing).
fn holders_text(label: &str, holders: &[Holder]) -> String {
    if holders.is_empty() {
        return format!("{label}=-");
    }
    let held: Vec<String> = holders
        .iter()
        .map(|h| {
            let mut how = String::new();
            if h.reading || h.writing {
                how.push_str(if h.reading { "r" } else { "" });
                how.push_str(if h.writing { "w" } else { "" });
            } else if h.open {
                how.push('o');
            }
            if h.mapped {
                how.push('m');
            }
            format!("{}({}){how}", h.pid, h.command)
        })
        .collect();
    format!("{label}={}", held.join(","))
}

fn object_json(o: &Object, users: &Names) -> Value {
    let mut v = json!({
        "kind": o.kind.as_str(),
        "name": o.name,
        "owner": o.owner.map(|w| json!({ "uid": w.uid, "gid": w.gid, "user": users.get(w.uid) })),
        "mode": o.mode.map(|m| format!("{:04o}", m.bits())),
    });
    let extra = match &o.details {
        Details::SysvMq {
            key,
            id,
            bytes,
            messages,
            creator_uid,
            last_send,
            last_receive,
            waiting,
            ..
        } => json!({
            "key": format!("{:#010x}", *key as u32), "id": id, "bytes": bytes,
            "messages": messages, "creator_uid": creator_uid,
            "last_send": pid_json(last_send), "last_receive": pid_json(last_receive),
            "waiting": holders_json(waiting),
        }),
        Details::SysvSem {
            key,
            id,
            semaphores,
            creator_uid,
            waiting_increase,
            waiting_zero,
            last_op,
            waiting,
            ..
        } => json!({
            "key": format!("{:#010x}", *key as u32), "id": id, "semaphores": semaphores,
            "creator_uid": creator_uid, "waiting_increase": waiting_increase,
            "waiting_zero": waiting_zero,
            "last_op": last_op.iter().map(pid_json).collect::<Vec<_>>(),
            "waiting": holders_json(waiting),
        }),
        Details::SysvShm {
            key,
            id,
            size,
            attached,
            creator_uid,
            creator,
            last_op,
            removed,
            attached_by,
            ..
        } => json!({
            "key": format!("{:#010x}", *key as u32), "id": id, "size": size,
            "attached": attached, "creator_uid": creator_uid,
            "creator": pid_json(creator), "last_op": pid_json(last_op), "removed": removed,
            "attached_by": attached_by.iter().map(holder_json).collect::<Vec<_>>(),
        }),
        Details::DevShm { size, holders, .. } => json!({
            "size": size, "holders": holders_json(holders),
        }),
        Details::PosixMq {
            messages,
            max_messages,
            message_size,
            bytes,
            notify,
            holders,
            ..
        } => json!({
            "messages": messages, "max_messages": max_messages, "message_size": message_size,
            "bytes": bytes, "notify": notify.as_ref().map(pid_json), "holders": holders_json(holders),
        }),
        Details::Unix {
            socket_type,
            state,
            abstract_name,
            unlinked,
            connections,
            inode,
            holders,
            ..
        } => json!({
            "socket_type": socket_type, "state": state_text(*state), "abstract": abstract_name,
            "unlinked": unlinked, "connections": connections, "inode": inode,
            "holders": holders_json(holders),
        }),
        Details::Fifo { holders, .. } => json!({ "holders": holders_json(holders) }),
        Details::Lock {
            class,
            exclusive,
            waiting,
            start,
            end,
            holder,
            dev,
            inode,
            path,
            holders,
            ..
        } => json!({
            "class": class_text(*class), "exclusive": exclusive, "waiting": waiting,
            "start": start, "end": end, "holder": holder.as_ref().map(pid_json),
            "dev": format!("{:#x}", dev), "inode": inode,
            "path": path.as_ref().map(|p| p.to_string_lossy()),
            "holders": holders_json(holders),
        }),
        _ => json!({}),
    };
    if let (Value::Object(base), Value::Object(more)) = (&mut v, extra) {
        base.extend(more);
    }
    v
}

fn document(listing: &Listing, users: &Names) -> Value {
    json!({
        "schema": "unipc-ls/1",
        "objects": listing.objects.iter().map(|o| object_json(o, users)).collect::<Vec<_>>(),
        "unreadable": listing.unreadable.iter().map(|u| json!({
            "what": u.what, "reason": u.reason,
        })).collect::<Vec<_>>(),
    })
}

/// `1234`, or `1234*` when that process is gone; `-` for none.
fn pid_text(p: &Pid) -> String {
    match (p.pid, p.alive) {
        (0, _) => "-".to_owned(),
        (pid, true) => pid.to_string(),
        (pid, false) => format!("{pid}*"),
    }
}

fn count(n: Option<u64>) -> String {
    n.map_or_else(|| "?".to_owned(), |n| n.to_string())
}

fn row(o: &Object, users: &Names) -> Vec<String> {
    let (key, size, details) = match &o.details {
        Details::SysvMq {
            key,
            bytes,
            messages,
            last_send,
            last_receive,
            waiting,
            ..
        } => (
            format!("{:#010x}", *key as u32),
            format!("{bytes} B"),
            format!(
                "msgs={messages} lspid={} lrpid={}{}",
                pid_text(last_send),
                pid_text(last_receive),
                if waiting.is_empty() {
                    String::new()
                } else {
                    format!(" {}", holders_text("waiting", waiting))
                }
            ),
        ),
        Details::SysvSem {
            key,
            semaphores,
            waiting_increase,
            waiting_zero,
            last_op,
            ..
        } => {
            let pids: Vec<String> = last_op.iter().map(pid_text).collect();
            (
                format!("{:#010x}", *key as u32),
                format!("{semaphores} sems"),
                format!(
                    "ncnt={} zcnt={} pids={}",
                    count(*waiting_increase),
                    count(*waiting_zero),
                    if pids.is_empty() {
                        "?".to_owned()
                    } else {
                        pids.join(",")
                    }
                ),
            )
        }
        Details::SysvShm {
            key,
            size,
            attached,
            creator,
            last_op,
            removed,
            attached_by,
            ..
        } => (
            format!("{:#010x}", *key as u32),
            format!("{size} B"),
            format!(
                "nattch={attached} cpid={} lpid={}{}{}",
                pid_text(creator),
                pid_text(last_op),
                if *removed { " removed" } else { "" },
                if attached_by.is_empty() {
                    String::new()
                } else {
                    let by: Vec<String> = attached_by
                        .iter()
                        .map(|h| format!("{}({})", h.pid, h.command))
                        .collect();
                    format!(" by={}", by.join(","))
                }
            ),
        ),
        Details::DevShm { size, holders, .. } => (
            "-".to_owned(),
            format!("{size} B"),
            holders_text("holders", holders),
        ),
        Details::PosixMq {
            messages,
            max_messages,
            bytes,
            notify,
            holders,
            ..
        } => (
            "-".to_owned(),
            format!("{} B", count(*bytes)),
            format!(
                "msgs={}/{}{} {}",
                count(*messages),
                count(*max_messages),
                notify
                    .as_ref()
                    .map_or_else(String::new, |p| format!(" notify={}", pid_text(p))),
                holders_text("holders", holders)
            ),
        ),
        Details::Unix {
            socket_type,
            state,
            unlinked,
            connections,
            holders,
            ..
        } => (
            "-".to_owned(),
            "-".to_owned(),
            format!(
                "{socket_type} {}{}{} {}",
                state_text(*state),
                if *connections > 0 {
                    format!(" conns={connections}")
                } else {
                    String::new()
                },
                if *unlinked { " unlinked" } else { "" },
                holders_text("holders", holders)
            ),
        ),
        Details::Fifo { holders, .. } => (
            "-".to_owned(),
            "-".to_owned(),
            holders_text("holders", holders),
        ),
        Details::Lock {
            class,
            exclusive,
            waiting,
            start,
            end,
            holder,
            ..
        } => (
            "-".to_owned(),
            end.map_or_else(|| format!("{start}-EOF"), |e| format!("{start}-{e}")),
            format!(
                "{} {}{} pid={}",
                class_text(*class),
                if *exclusive { "write" } else { "read" },
                if *waiting { " waiting" } else { "" },
                holder.as_ref().map_or_else(|| "-".to_owned(), pid_text)
            ),
        ),
        _ => ("-".to_owned(), "-".to_owned(), String::new()),
    };
    vec![
        o.name.clone(),
        key,
        o.owner
            .map_or_else(|| "-".to_owned(), |w| users.show(w.uid)),
        o.mode
            .map_or_else(|| "-".to_owned(), |m| format!("{:04o}", m.bits())),
        size,
        details,
    ]
}

/// `text` with each control character escaped (`\\n`, `\\u{1b}`).
pub(super) fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn table(listing: &Listing, users: &Names) -> String {
    let mut rows = vec![["NAME", "KEY", "OWNER", "MODE", "SIZE", "DETAILS"]
        .map(str::to_owned)
        .to_vec()];
    // Names and command names are anyone's choice: a control character
    // in one must not forge a line of the table.
    rows.extend(
        listing
            .objects
            .iter()
            .map(|o| row(o, users).iter().map(|c| printable(c)).collect()),
    );
    if listing.objects.is_empty() {
        return "no IPC objects found\n".to_owned();
    }
    let mut out = String::new();
    for line in unipc_bench::text::grid(&rows).lines() {
        if line.chars().count() > WIDTH {
            out.extend(line.chars().take(WIDTH - 1));
            out.push('…');
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}
