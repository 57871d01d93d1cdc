//! Bound UNIX sockets, from `/proc/net/unix` (this network namespace's):
//! one object per listening or bound socket, by path or abstract name.
//! A connection a listener accepted carries the listener's address too;
//! it is counted on the listener, not listed on its own.

use std::collections::HashMap;
use std::os::unix::fs::FileTypeExt;

use super::procs::{note, Processes};
use super::{owner_and_mode, Details, Kind, Listing, Object, SocketState, Unreadable};

const PATH: &str = "/proc/net/unix";
/// `__SO_ACCEPTCON` in the Flags column: the socket listens.
const ACCEPTING: u32 = 1 << 16;

/// One line of `/proc/net/unix` that has an address.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    listening: bool,
    socket_type: &'static str,
    connected: bool,
    inode: u64,
    /// The address: a path, or `@` and an abstract name.
    address: String,
}

/// Adds every bound socket with its holders.
pub(super) fn sockets(listing: &mut Listing, procs: &Processes) {
    let text = match std::fs::read(PATH) {
        Ok(text) => text,
        Err(err) => return note(&mut listing.unreadable, PATH.into(), &err),
    };
    let rows: Vec<Row> = text
        .split(|&b| b == b'\n')
        .skip(1)
        .filter_map(|line| parse_row(line, &mut listing.unreadable))
        .collect();
    // Per (type, address): whether one listens, and how many connected
    // rows carry it (the listener's accepted connections). One pass, not
    // one per row: a host may have thousands of sockets.
    let mut by_address: HashMap<(&str, &str), (bool, u64)> = HashMap::new();
    for r in &rows {
        let entry = by_address.entry((r.socket_type, &r.address)).or_default();
        entry.0 |= r.listening;
        entry.1 += u64::from(r.connected);
    }
    let mut found = Vec::new();
    for row in &rows {
        let (listened, connected) = by_address[&(row.socket_type, row.address.as_str())];
        if row.connected && row.socket_type != "dgram" && listened {
            continue;
        }
        let connections = if row.listening { connected } else { 0 };
        let state = if row.listening {
            SocketState::Listening
        } else if row.connected {
            SocketState::Connected
        } else {
            SocketState::Bound
        };
        let holders = procs.holders_of_socket(row.inode);
        let abstract_name = row.address.starts_with('@');
        let (owner, mode, unlinked) = if abstract_name {
            // No file: the owner is the user of the process holding it.
            let owner = holders.first().and_then(|h| procs.owner_of(h.pid));
            (owner, None, false)
        } else {
            match std::fs::symlink_metadata(&row.address) {
                Ok(meta) if meta.file_type().is_socket() => {
                    let (owner, mode) = owner_and_mode(&meta);
                    (owner, mode, false)
                }
                // Gone, or something else now has the name.
                _ => (None, None, true),
            }
        };
        let scheme = match row.socket_type {
            "dgram" => "unix-dgram",
            "seqpacket" => "unix-seqpacket",
            _ => "unix",
        };
        found.push(Object {
            kind: Kind::Unix,
            name: format!("{scheme}:{}", row.address),
            owner,
            mode,
            details: Details::Unix {
                socket_type: row.socket_type,
                state,
                abstract_name,
                unlinked,
                connections,
                inode: row.inode,
                holders,
            },
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    listing.objects.extend(found);
}

/// `Num RefCount Protocol Flags Type St Inode Path`, with a path (the
/// rest of the line) or nothing for a socket with no address.
fn parse_row(line: &[u8], unreadable: &mut Vec<Unreadable>) -> Option<Row> {
    let text = std::str::from_utf8(line).ok().or_else(|| {
        unreadable.push(Unreadable {
            what: format!("{PATH}: {}", crate::name::escaped(line)),
            reason: "the address is not UTF-8".to_owned(),
        });
        None
    })?;
    let mut rest = text.trim_start();
    let mut cols = [""; 7];
    for col in &mut cols {
        let (field, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        *col = field;
        rest = tail.trim_start();
    }
    let address = rest.trim_end_matches(['\n', '\r']);
    if address.is_empty() {
        return None;
    }
    let flags = u32::from_str_radix(cols[3], 16).ok()?;
    let socket_type = match u32::from_str_radix(cols[4], 16).ok()? {
        1 => "stream",
        2 => "dgram",
        5 => "seqpacket",
        _ => return None,
    };
    // SS_CONNECTED is 3 (SS_CONNECTING 2, SS_DISCONNECTING 4).
    let connected = matches!(u32::from_str_radix(cols[5], 16).ok()?, 2..=4);
    Some(Row {
        listening: flags & ACCEPTING != 0,
        socket_type,
        connected,
        inode: cols[6].parse().ok()?,
        address: address.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_give_type_state_inode_and_address() {
        let mut notes = Vec::new();
        let listener = b"0000000000000000: 00000002 00000000 00010000 0001 01 4711 /run/a b.sock";
        let row = parse_row(listener, &mut notes).unwrap();
        assert_eq!(
            row,
            Row {
                listening: true,
                socket_type: "stream",
                connected: false,
                inode: 4711,
                address: "/run/a b.sock".to_owned(),
            }
        );
        let abstract_dgram = b"0000000000000000: 00000002 00000000 00000000 0002 03 12 @name";
        let row = parse_row(abstract_dgram, &mut notes).unwrap();
        assert_eq!((row.socket_type, row.connected), ("dgram", true));
        assert_eq!(row.address, "@name");
        let unbound = b"0000000000000000: 00000003 00000000 00000000 0001 03 13";
        assert_eq!(parse_row(unbound, &mut notes), None);
        assert!(notes.is_empty());
        assert_eq!(
            parse_row(b"0: 2 0 0 0001 01 14 /tmp/caf\xe9", &mut notes),
            None
        );
        assert_eq!(notes.len(), 1);
    }
}
