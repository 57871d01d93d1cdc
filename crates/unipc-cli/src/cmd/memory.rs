//! `unipc read` and `unipc write`: look into and change shared memory in
//! place, through `unipc::open::SharedMemory`.

use std::io::Read;
use std::process::ExitCode;

use unipc::open::SharedMemory;
use unipc::shm::Access;
use unipc::Endpoint;

use super::usage;
use crate::cli::{ReadArgs, WriteArgs};

/// Reads a byte count such as `4096`, `64K`, `1M` or `2G` (powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "{text:?} is not a byte count (a number with an optional K, M or G suffix, as in 64K)"
        )
    };
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'K' | b'k') => (&text[..text.len() - 1], 10),
        Some(b'M' | b'm') => (&text[..text.len() - 1], 20),
        Some(b'G' | b'g') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is too large (at most {} bytes)", u64::MAX))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large (at most {} bytes)", u64::MAX))
}

fn check_shared(endpoint: &Endpoint, verb: &str) -> anyhow::Result<()> {
    super::refuse_private_except_create(endpoint, false)?;
    if matches!(
        endpoint,
        Endpoint::Shm(_) | Endpoint::SysvShm(_) | Endpoint::SysvShmId(_)
    ) {
        Ok(())
    } else {
        Err(usage(format!(
            "{endpoint}: unipc {verb} works on shared memory (shm:/NAME, sysv-shm:KEY); use unipc send / unipc recv for {}",
            endpoint.scheme()
        )))
    }
}

/// `unipc read`.
pub fn read(args: ReadArgs) -> anyhow::Result<ExitCode> {
    check_shared(&args.endpoint, "read")?;
    let memory = SharedMemory::open(&args.endpoint, Access::ReadOnly)?;
    let size = memory.size()?;
    let length = match args.length {
        Some(n) => n,
        None => size.saturating_sub(args.offset),
    };
    let length = usize::try_from(length).map_err(|_| {
        anyhow::anyhow!(
            "{}: a length of {length} bytes does not fit in memory",
            args.endpoint
        )
    })?;
    // Refused before allocating: an out-of-range length names both sizes.
    if args
        .offset
        .checked_add(length as u64)
        .map_or(true, |end| end > size)
    {
        return Err(unipc::Error::OutOfBounds {
            object: args.endpoint.to_string().into(),
            op: "read",
            offset: args.offset,
            len: length as u64,
            size,
        }
        .into());
    }
    let mut buf = vec![0; length];
    memory.read_at(args.offset, &mut buf)?;
    let out = if args.hex {
        hexdump(args.offset, &buf)
    } else {
        buf
    };
    crate::out::write_stdout(&mut std::io::stdout().lock(), &out)?;
    Ok(ExitCode::SUCCESS)
}

/// `unipc write`.
pub fn write(args: WriteArgs) -> anyhow::Result<ExitCode> {
    check_shared(&args.endpoint, "write")?;
    let memory = SharedMemory::open(&args.endpoint, Access::ReadWrite)?;
    let size = memory.size()?;
    let data = match &args.data {
        Some(data) => {
            use std::os::unix::ffi::OsStrExt;
            data.as_bytes().to_vec()
        }
        None => {
            // At most the room left plus one byte: enough to tell that the
            // input would not fit, without reading an endless stdin.
            let room = size.saturating_sub(args.offset);
            let mut data = Vec::new();
            std::io::stdin()
                .lock()
                .take(room.saturating_add(1))
                .read_to_end(&mut data)
                .map_err(|e| anyhow::anyhow!("reading stdin: {e}"))?;
            if data.len() as u64 > room {
                return Err(unipc::Error::OutOfBounds {
                    object: args.endpoint.to_string().into(),
                    op: "write",
                    offset: args.offset,
                    len: data.len() as u64,
                    size,
                })
                .map_err(|e| anyhow::Error::from(e).context("stdin holds more than fits"));
            }
            data
        }
    };
    memory.write_at(args.offset, &data)?;
    Ok(ExitCode::SUCCESS)
}

/// `OFFSET  xx xx ... (16)  |ascii|`, one line per 16 bytes, as `hexdump -C`.
fn hexdump(start: u64, bytes: &[u8]) -> Vec<u8> {
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let offset = start + (i as u64) * 16;
        out.push_str(&format!("{offset:08x} "));
        for j in 0..16 {
            if j == 8 {
                out.push(' ');
            }
            match chunk.get(j) {
                Some(b) => out.push_str(&format!(" {b:02x}")),
                None => out.push_str("   "),
            }
        }
        out.push_str("  |");
        for &b in chunk {
            out.push(if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            });
        }
        out.push_str("|\n");
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_take_suffixes_and_refuse_overflow() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64K"), Ok(64 << 10));
        assert_eq!(parse_bytes("1m"), Ok(1 << 20));
        assert_eq!(parse_bytes("2G"), Ok(2 << 30));
        for bad in ["", "K", "12Q", "-1", "1.5K", "0x10", "1KB"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
        assert!(parse_bytes("18446744073709551615").is_ok());
        assert!(parse_bytes("18446744073709551616").is_err());
        assert!(parse_bytes("17179869184G")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn hexdump_shows_offset_hex_and_ascii() {
        let text = String::from_utf8(hexdump(16, b"hello, world\x00\x01\xffABC")).unwrap();
        assert_eq!(
            text,
            "00000010  68 65 6c 6c 6f 2c 20 77  6f 72 6c 64 00 01 ff 41  |hello, world...A|\n\
             00000020  42 43                                             |BC|\n"
        );
    }
}
