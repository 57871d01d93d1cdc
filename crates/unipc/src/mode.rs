//! Permission bits for the objects unipc creates: FIFOs, socket files,
//! POSIX and System V queues.
//!
//! A [`Mode`] holds the nine permission bits (`0o777` and below) and
//! nothing else: set-user-id, set-group-id and sticky bits, and file type
//! bits, are refused when the mode is made, before any system call, so a
//! function that takes a `Mode` cannot be handed one it would have to
//! refuse. Modes are written and read in octal, the way chmod(1) takes them.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// The permission bits of an object (`0o777` and below).
///
/// Made with [`Mode::new`], parsed from octal text (`600`, `0600`,
/// `0o600`) with [`str::parse`], or taken from the constants for the
/// common cases. Display writes `0o600`; `{:o}` writes the bare digits
/// `600` and `{:#o}` writes `0o600`, as for an integer.
///
/// # Examples
/// ```
/// use unipc::Mode;
///
/// let mode: Mode = "0640".parse()?;
/// assert_eq!(mode, Mode::new(0o640)?);
/// assert_eq!(mode.bits(), 0o640);
/// assert_eq!(mode.to_string(), "0o640");
/// assert_eq!(format!("{mode:o}"), "640");
/// assert_eq!("0o600".parse::<Mode>()?, Mode::OWNER_RW);
///
/// // Bits beyond the permissions are refused before any system call.
/// let err = Mode::new(0o4755).unwrap_err();
/// assert!(matches!(err, unipc::Error::InvalidName { kind: "permission mode", .. }));
/// assert!("8".parse::<Mode>().is_err());
/// # Ok::<(), unipc::Error>(())
/// ```
///
/// # References
/// chmod(2), inode(7) (the file mode)
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mode(u32);

const KIND: &str = "permission mode";

impl Mode {
    /// `0o600`: the owner reads and writes; nobody else has access.
    pub const OWNER_RW: Mode = Mode(0o600);
    /// `0o640`: the owner reads and writes, the group reads.
    pub const OWNER_RW_GROUP_R: Mode = Mode(0o640);
    /// `0o660`: the owner and the group read and write.
    pub const OWNER_GROUP_RW: Mode = Mode(0o660);
    /// `0o644`: the owner reads and writes, everyone reads.
    pub const OWNER_RW_ALL_R: Mode = Mode(0o644);
    /// `0o666`: everyone reads and writes.
    pub const ALL_RW: Mode = Mode(0o666);
    /// `0o777`: every permission bit.
    pub const ALL: Mode = Mode(0o777);

    /// The mode with permission bits `bits`.
    ///
    /// # Errors
    /// [`Error::InvalidName`] (kind `"permission mode"`) when `bits` has
    /// bits above `0o777`.
    pub fn new(bits: u32) -> Result<Mode> {
        Mode::from_bits(bits).ok_or_else(|| Error::InvalidName {
            kind: KIND,
            input: format!("{bits:#o}"),
            reason: "only the permission bits 0o777 are allowed".to_owned(),
        })
    }

    /// The mode with permission bits `bits`, or `None` when `bits` has bits
    /// above `0o777`; usable in a `const`.
    pub const fn from_bits(bits: u32) -> Option<Mode> {
        if bits & !0o777 == 0 {
            Some(Mode(bits))
        } else {
            None
        }
    }

    /// The permission bits of a mode the kernel reported (`st_mode`), the
    /// file type and the special bits dropped.
    pub(crate) const fn from_bits_truncate(bits: u32) -> Mode {
        Mode(bits & 0o777)
    }

    /// The permission bits.
    pub const fn bits(self) -> u32 {
        self.0
    }
}

impl From<Mode> for u32 {
    fn from(mode: Mode) -> u32 {
        mode.0
    }
}

impl TryFrom<u32> for Mode {
    type Error = Error;

    /// As [`Mode::new`].
    fn try_from(bits: u32) -> Result<Mode> {
        Mode::new(bits)
    }
}

impl FromStr for Mode {
    type Err = Error;

    /// Reads octal digits, with an optional `0o` prefix: `600`, `0600`,
    /// `0o600`.
    ///
    /// # Errors
    /// [`Error::InvalidName`] (kind `"permission mode"`) for empty text,
    /// anything but octal digits, or a value above `0o777`.
    fn from_str(text: &str) -> Result<Mode> {
        let invalid = |reason: &str| Error::InvalidName {
            kind: KIND,
            input: text.to_owned(),
            reason: reason.to_owned(),
        };
        let digits = text.strip_prefix("0o").unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Err(invalid("expected octal digits, as in 600, 0600 or 0o600"));
        }
        let bits = u32::from_str_radix(digits, 8).unwrap_or(u32::MAX);
        Mode::from_bits(bits).ok_or_else(|| invalid("only the permission bits 0o777 are allowed"))
    }
}

impl fmt::Display for Mode {
    /// `0o600`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#05o}", self.0)
    }
}

impl fmt::Debug for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mode({self})")
    }
}

impl fmt::Octal for Mode {
    /// As for an integer: `600`, or `0o600` with `{:#o}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Octal::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_text_parses_in_every_usual_spelling() {
        for text in ["600", "0600", "0o600", "00600"] {
            assert_eq!(text.parse::<Mode>().unwrap(), Mode::OWNER_RW, "{text}");
        }
        assert_eq!("0".parse::<Mode>().unwrap().bits(), 0);
        assert_eq!("777".parse::<Mode>().unwrap(), Mode::ALL);
    }

    #[test]
    fn anything_but_permission_bits_is_refused() {
        for text in [
            "",
            "0o",
            "1000",
            "4755",
            "8",
            "60a",
            "+600",
            "-0",
            " 600",
            "0x600",
            "0o0o6",
            "77777777777777777777777",
        ] {
            let err = text.parse::<Mode>().unwrap_err();
            assert!(
                matches!(&err, Error::InvalidName { kind: KIND, input, .. } if input == text),
                "{text:?}: {err}"
            );
        }
        assert!(Mode::new(0o1777).is_err());
        assert!(Mode::from_bits(0o10000).is_none());
        assert_eq!(
            Mode::new(0o4755).unwrap_err().to_string(),
            "invalid permission mode \"0o4755\": only the permission bits 0o777 are allowed"
        );
    }

    #[test]
    fn display_and_octal_round_trip() {
        for bits in [0, 0o7, 0o600, 0o644, 0o777] {
            let mode = Mode::new(bits).unwrap();
            assert_eq!(mode.to_string().parse::<Mode>().unwrap(), mode);
            assert_eq!(format!("{mode:o}").parse::<Mode>().unwrap(), mode);
            assert_eq!(format!("{mode:o}"), format!("{bits:o}"));
            assert_eq!(format!("{mode:#o}"), format!("{bits:#o}"));
        }
        assert_eq!(Mode::new(0o7).unwrap().to_string(), "0o007");
        assert_eq!(format!("{:?}", Mode::OWNER_RW), "Mode(0o600)");
        assert_eq!(Mode::from_bits_truncate(0o104644), Mode::OWNER_RW_ALL_R);
    }
}
