//! Validated names for every namespace unipc touches.
//!
//! A name is checked when it is built, so a bad one is refused with a clear
//! [`Error::InvalidName`] before any system call can act on it.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::{Error, Result};

/// Longest component the kernel accepts (NAME_MAX).
pub const NAME_MAX: usize = 255;

/// Bytes available in `sockaddr_un.sun_path`, less the terminating NUL of a
/// path or the leading NUL of an abstract name.
pub const UNIX_ADDR_MAX: usize = 107;

/// `bytes` as one printable line: text as it is, a control character as
/// `\n`, `\t`, `\r` or `\xNN` (`\u{NNNN}` beyond ASCII), and each byte that
/// is not UTF-8 as `\xNN`.
pub(crate) fn escaped(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    write_escaped(&mut out, bytes).expect("writing to a String cannot fail");
    out
}

/// Writes `bytes` as [`escaped`] does.
pub(crate) fn write_escaped(out: &mut impl fmt::Write, bytes: &[u8]) -> fmt::Result {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.write_str("\\n")?,
                '\t' => out.write_str("\\t")?,
                '\r' => out.write_str("\\r")?,
                c if c.is_control() && c.is_ascii() => write!(out, "\\x{:02x}", c as u32)?,
                c if c.is_control() => write!(out, "\\u{{{:04x}}}", c as u32)?,
                c => out.write_char(c)?,
            }
        }
        for b in chunk.invalid() {
            write!(out, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

fn invalid(kind: &'static str, input: impl AsRef<[u8]>, reason: impl Into<String>) -> Error {
    Error::InvalidName {
        kind,
        input: String::from_utf8_lossy(input.as_ref()).into_owned(),
        reason: reason.into(),
    }
}

/// A POSIX IPC name (`mq_open`, `shm_open`, `sem_open`): one leading slash,
/// no other slash, no NUL, at most [`NAME_MAX`] bytes after the slash.
///
/// ```
/// use unipc::name::PosixName;
///
/// let name: PosixName = "/jobs".parse()?;
/// assert_eq!(name.as_str(), "/jobs");
/// assert!("jobs".parse::<PosixName>().is_err());
/// assert!("/a/b".parse::<PosixName>().is_err());
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PosixName(String);

impl PosixName {
    const KIND: &'static str = "POSIX IPC name";

    /// Validates `name`.
    ///
    /// # Errors
    /// [`Error::InvalidName`] naming the rule broken.
    pub fn new(name: &str) -> Result<Self> {
        let Some(rest) = name.strip_prefix('/') else {
            return Err(invalid(Self::KIND, name, "must start with '/'"));
        };
        if rest.is_empty() {
            return Err(invalid(
                Self::KIND,
                name,
                "needs at least one character after '/'",
            ));
        }
        if rest.contains('/') {
            return Err(invalid(
                Self::KIND,
                name,
                "may contain no '/' after the first",
            ));
        }
        if rest.contains('\0') {
            return Err(invalid(Self::KIND, name, "may not contain a NUL byte"));
        }
        if rest == "." || rest == ".." {
            return Err(invalid(Self::KIND, name, "may not be '.' or '..'"));
        }
        if rest.len() > NAME_MAX {
            return Err(invalid(
                Self::KIND,
                name,
                format!(
                    "is {} bytes after '/'; the limit is NAME_MAX = {NAME_MAX}",
                    rest.len()
                ),
            ));
        }
        Ok(PosixName(name.to_owned()))
    }

    /// The name, with its leading slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PosixName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        PosixName::new(s)
    }
}

impl fmt::Display for PosixName {
    /// The name, with control characters escaped (see [`FsPath`]'s Display).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0.as_bytes())
    }
}

/// A filesystem path for an IPC object (a FIFO, a socket file): not empty,
/// no NUL byte.
///
/// ```
/// use unipc::name::FsPath;
///
/// let path = FsPath::new("/tmp/app.fifo")?;
/// assert_eq!(path.as_path(), std::path::Path::new("/tmp/app.fifo"));
/// assert!(FsPath::new("").is_err());
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FsPath(PathBuf);

impl FsPath {
    const KIND: &'static str = "path";

    /// Validates `path`.
    ///
    /// # Errors
    /// [`Error::InvalidName`] when the path is empty or contains a NUL.
    pub fn new(path: impl AsRef<Path>) -> Result<Self> {
        let bytes = path.as_ref().as_os_str().as_bytes();
        if bytes.is_empty() {
            return Err(invalid(Self::KIND, bytes, "is empty"));
        }
        if bytes.contains(&0) {
            return Err(invalid(Self::KIND, bytes, "may not contain a NUL byte"));
        }
        Ok(FsPath(path.as_ref().to_owned()))
    }

    /// The path.
    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for FsPath {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl fmt::Display for FsPath {
    /// The path as one printable line: a control character or a byte that
    /// is not UTF-8 is written escaped (`\n`, `\x1b`, `\xff`), so a name
    /// cannot break or forge the line of an error that shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0.as_os_str().as_bytes())
    }
}

/// The address of a UNIX-domain socket: a filesystem path, or a name in
/// Linux's abstract namespace (no file; gone when the last socket closes).
///
/// Written `PATH` or `@NAME` in endpoints.
///
/// ```
/// use unipc::name::UnixAddr;
///
/// let path: UnixAddr = "/run/app.sock".parse()?;
/// let abstract_name: UnixAddr = "@app".parse()?;
/// assert_eq!(abstract_name.to_string(), "@app");
/// assert!(path.as_path().is_some());
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnixAddr {
    /// A socket file at this path.
    Path(FsPath),
    /// A name in the abstract namespace (without the leading NUL).
    Abstract(Vec<u8>),
}

impl UnixAddr {
    const KIND: &'static str = "UNIX socket address";

    /// A path address, checked against the size of `sun_path`.
    ///
    /// # Errors
    /// [`Error::InvalidName`] when the path is empty, has a NUL, or is longer
    /// than [`UNIX_ADDR_MAX`] bytes.
    pub fn path(path: impl AsRef<Path>) -> Result<Self> {
        let fs_path = FsPath::new(path.as_ref()).map_err(|err| match err {
            Error::InvalidName { input, reason, .. } => Error::InvalidName {
                kind: Self::KIND,
                input,
                reason,
            },
            other => other,
        })?;
        let bytes = path.as_ref().as_os_str().as_bytes();
        if bytes.first() == Some(&b'@') {
            return Err(invalid(
                Self::KIND,
                bytes,
                "would read as an abstract name; write ./@... for such a file",
            ));
        }
        let len = bytes.len();
        if len > UNIX_ADDR_MAX {
            return Err(invalid(
                Self::KIND,
                path.as_ref().as_os_str().as_bytes(),
                format!("is {len} bytes; a socket path holds at most {UNIX_ADDR_MAX}"),
            ));
        }
        Ok(UnixAddr::Path(fs_path))
    }

    /// An abstract address.
    ///
    /// # Errors
    /// [`Error::InvalidName`] when the name is empty or longer than
    /// [`UNIX_ADDR_MAX`] bytes.
    pub fn abstract_name(name: impl AsRef<[u8]>) -> Result<Self> {
        let name = name.as_ref();
        if name.is_empty() {
            return Err(invalid(
                Self::KIND,
                b"@",
                "the abstract name after '@' is empty",
            ));
        }
        if name.len() > UNIX_ADDR_MAX {
            return Err(invalid(
                Self::KIND,
                name,
                format!(
                    "is {} bytes; an abstract name holds at most {UNIX_ADDR_MAX}",
                    name.len()
                ),
            ));
        }
        Ok(UnixAddr::Abstract(name.to_owned()))
    }

    /// The socket file's path, when the address has one.
    pub fn as_path(&self) -> Option<&Path> {
        match self {
            UnixAddr::Path(p) => Some(p.as_path()),
            UnixAddr::Abstract(_) => None,
        }
    }
}

impl FromStr for UnixAddr {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.strip_prefix('@') {
            Some(name) => UnixAddr::abstract_name(name),
            None => UnixAddr::path(OsStr::new(s)),
        }
    }
}

impl fmt::Display for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnixAddr::Path(p) => write!(f, "{p}"),
            UnixAddr::Abstract(name) => {
                f.write_str("@")?;
                write_escaped(f, name)
            }
        }
    }
}

/// A System V IPC key: a number, or `IPC_PRIVATE` (a new object only the
/// creator and its children can find by identifier).
///
/// Written as a decimal or `0x` hexadecimal number, or `private`.
///
/// ```
/// use unipc::name::SysvKey;
///
/// assert_eq!("0x1f".parse::<SysvKey>()?, SysvKey::Key(31));
/// assert_eq!("private".parse::<SysvKey>()?, SysvKey::Private);
/// assert!("0x".parse::<SysvKey>().is_err());
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SysvKey {
    /// `IPC_PRIVATE`.
    Private,
    /// A key other programs can name. Zero is `IPC_PRIVATE` to the kernel,
    /// so it is refused here.
    Key(i32),
}

impl SysvKey {
    const KIND: &'static str = "System V key";

    /// The value passed to `msgget`/`semget`/`shmget`.
    pub fn raw(self) -> i32 {
        match self {
            SysvKey::Private => 0,
            SysvKey::Key(k) => k,
        }
    }
}

impl FromStr for SysvKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s == "private" {
            return Ok(SysvKey::Private);
        }
        // from_str_radix and parse take a leading '+' (and a '-' inside
        // "0x-5"): only digits are a key.
        let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                u32::from_str_radix(hex, 16).map(|v| v as i32).ok()
            }
            Some(_) => None,
            None => {
                let digits = s.strip_prefix('-').unwrap_or(s);
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                    s.parse::<i32>().ok()
                } else {
                    None
                }
            }
        };
        match parsed {
            Some(0) => Err(invalid(Self::KIND, s, "0 is IPC_PRIVATE; write 'private'")),
            Some(k) => Ok(SysvKey::Key(k)),
            None => Err(invalid(
                Self::KIND,
                s,
                "must be a decimal number, a 0x-prefixed hexadecimal number of at most 32 bits, or 'private'",
            )),
        }
    }
}

impl fmt::Display for SysvKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SysvKey::Private => f.write_str("private"),
            SysvKey::Key(k) => write!(f, "{:#x}", *k as u32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posix_names_follow_the_rules() {
        assert!(PosixName::new("/ok-name_1").is_ok());
        let long = format!("/{}", "a".repeat(NAME_MAX));
        assert!(PosixName::new(&long).is_ok());
        let too_long = format!("/{}", "a".repeat(NAME_MAX + 1));
        let err = PosixName::new(&too_long).unwrap_err().to_string();
        assert!(err.contains("NAME_MAX = 255"), "{err}");
        assert!(PosixName::new("/")
            .unwrap_err()
            .to_string()
            .contains("at least one character"));
        assert!(PosixName::new("/a\0b")
            .unwrap_err()
            .to_string()
            .contains("NUL"));
        assert!(PosixName::new("/..").is_err());
    }

    #[test]
    fn unix_addresses_fit_sun_path() {
        let max = "p".repeat(UNIX_ADDR_MAX);
        assert!(UnixAddr::path(&max).is_ok());
        let err = UnixAddr::path(format!("{max}p")).unwrap_err().to_string();
        assert!(err.contains("at most 107"), "{err}");
        assert!("@"
            .parse::<UnixAddr>()
            .unwrap_err()
            .to_string()
            .contains("empty"));
        assert!(UnixAddr::abstract_name(vec![b'x'; UNIX_ADDR_MAX + 1]).is_err());
    }

    #[test]
    fn sysv_keys_parse_and_display() {
        assert_eq!("42".parse::<SysvKey>().unwrap(), SysvKey::Key(42));
        assert_eq!("0xffffffff".parse::<SysvKey>().unwrap(), SysvKey::Key(-1));
        assert_eq!(SysvKey::Key(-1).to_string(), "0xffffffff");
        assert!("0"
            .parse::<SysvKey>()
            .unwrap_err()
            .to_string()
            .contains("IPC_PRIVATE"));
        assert!("abc".parse::<SysvKey>().is_err());
        for bad in ["0x+5", "+5", "0x-5", "--5", "-", "0x", " 5", "5 "] {
            assert!(bad.parse::<SysvKey>().is_err(), "{bad:?} parsed");
        }
        assert_eq!("-2".parse::<SysvKey>().unwrap(), SysvKey::Key(-2));
    }

    #[test]
    fn names_display_as_one_printable_line() {
        let path = FsPath::new(OsStr::from_bytes(b"/tmp/a\nb\x1b[31m\xff\\c")).unwrap();
        assert_eq!(path.to_string(), "/tmp/a\\nb\\x1b[31m\\xff\\c");
        let name = PosixName::new("/q\r\u{85}").unwrap();
        assert_eq!(name.to_string(), "/q\\r\\u{0085}");
        let abs = UnixAddr::abstract_name(b"a\tb").unwrap();
        assert_eq!(abs.to_string(), "@a\\tb");
    }
}
