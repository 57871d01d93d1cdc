//! The typed message's bytes: a fixed 16-byte header, then one value.
//!
//! ```text
//! offset  size  field
//!      0     4  magic, the bytes "UPCT"
//!      4     1  format version, 1
//!      5     1  encoding: 1 = CBOR (RFC 8949), 2 = MessagePack (named fields)
//!      6     2  descriptors sent alongside (SCM_RIGHTS), little-endian u16
//!      8     8  type tag, little-endian u64; 0 = untagged
//!     16     …  the value, one CBOR data item or one MessagePack object,
//!               nothing after it
//! ```
//!
//! A receiver decodes either encoding, whichever the byte names; a sender
//! writes [`Encoding::default`] (MessagePack) unless told otherwise.
//!
//! The header is checked before a byte of the body is decoded: a message
//! without the magic is not a typed message ([`Error::Undecodable`] with
//! its bytes); another version, encoding or type tag is refused as
//! [`Error::TypedMismatch`], never decoded on the chance that it fits.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ObjectName;
use crate::{Error, Result};

/// The first four bytes of every typed message.
pub const MAGIC: [u8; 4] = *b"UPCT";
/// The format version this build writes and accepts.
pub const VERSION: u8 = 1;
/// The length of the header in front of every typed message's body.
pub const HEADER_LEN: usize = 16;
/// How deeply arrays and maps may nest in a received value, in either
/// encoding: ciborium's recursion limit, 256, which
/// `from_reader_with_buffer` applies, and the same for rmp-serde's decoder
/// (whose own default is 1024). A value nested this deep decodes; deeper
/// input is [`Error::Undecodable`], never a stack overflow (tested with
/// 100,000 levels).
pub const RECURSION_LIMIT: usize = 256;

/// How a typed message's body is encoded: the header's encoding byte.
///
/// Both are self-describing (a message decodes to a [`Value`](super::Value)
/// without its Rust type, as `unipc recv --json --typed` does), and a
/// receiver decodes either whatever it sends. MessagePack is the default
/// because it is the faster of the two through these crates: rmp-serde
/// decodes the bench's five-field struct in about a quarter of the time
/// ciborium takes (figures in the module docs).
///
/// ```
/// use unipc::message::typed::{self, Encoding};
///
/// let bytes = typed::encode_as(&[1, 2], None, Encoding::Cbor)?;
/// assert_eq!(bytes[5], Encoding::Cbor.byte());
/// let (header, value) = typed::decode_value(&bytes)?;
/// assert_eq!(header.encoding, Encoding::Cbor);
/// assert!(value.is_array());
/// assert_eq!(Encoding::default(), Encoding::MessagePack);
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// CBOR (RFC 8949) through ciborium: encoding byte 1.
    Cbor,
    /// MessagePack through rmp-serde, structs as maps of field names (so
    /// the value describes itself): encoding byte 2. The default.
    #[default]
    MessagePack,
}

impl Encoding {
    /// The byte the header stores for this encoding.
    pub const fn byte(self) -> u8 {
        match self {
            Encoding::Cbor => 1,
            Encoding::MessagePack => 2,
        }
    }

    /// The encoding stored as `byte`; `None` for one this build does not know.
    pub const fn from_byte(byte: u8) -> Option<Encoding> {
        match byte {
            1 => Some(Encoding::Cbor),
            2 => Some(Encoding::MessagePack),
            _ => None,
        }
    }

    /// Its name: `"CBOR"` or `"MessagePack"`.
    pub const fn name(self) -> &'static str {
        match self {
            Encoding::Cbor => "CBOR",
            Encoding::MessagePack => "MessagePack",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
/// The decoder's scratch buffer: text and byte strings up to this long are
/// decoded without an intermediate allocation.
const SCRATCH: usize = 256;

/// The type a typed message says it holds: a 64-bit FNV-1a hash of a name
/// both sides agree on (`"myapp.Job/v1"`), so a receiver of one type
/// refuses a message of another with [`Error::TypedMismatch`] before
/// decoding it.
///
/// A name chosen by the user, rather than `std::any::type_name`, because
/// the latter is not stable across compiler versions and crates, and a
/// program in another language (or `unipc send --type-tag`) can hash a
/// name too. Hash 0 means "untagged" in the header, so a name that hashes
/// to 0 is stored as 1.
///
/// ```
/// use unipc::message::typed::TypeTag;
///
/// const JOB: TypeTag = TypeTag::named("myapp.Job/v1");
/// assert_eq!(JOB, TypeTag::named("myapp.Job/v1"));
/// assert_ne!(JOB, TypeTag::named("myapp.Job/v2"));
/// assert_eq!(TypeTag::from_value(JOB.value()), Some(JOB));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TypeTag(u64);

impl TypeTag {
    /// The tag of `name`: its 64-bit FNV-1a hash (1 where that is 0).
    pub const fn named(name: &str) -> TypeTag {
        let bytes = name.as_bytes();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut i = 0;
        while i < bytes.len() {
            hash ^= bytes[i] as u64;
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            i += 1;
        }
        TypeTag(if hash == 0 { 1 } else { hash })
    }

    /// The tag as the header stores it (never 0).
    pub const fn value(self) -> u64 {
        self.0
    }

    /// The tag stored as `value`; `None` for 0, which means untagged.
    pub const fn from_value(value: u64) -> Option<TypeTag> {
        if value == 0 {
            None
        } else {
            Some(TypeTag(value))
        }
    }
}

impl fmt::Debug for TypeTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TypeTag({:#018x})", self.0)
    }
}

impl fmt::Display for TypeTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

/// A typed message's header, as [`decode_value`] reads it.
///
/// ```
/// use unipc::message::typed::{self, TypeTag};
///
/// let bytes = typed::encode(&(1, "two"), Some(TypeTag::named("pair")))?;
/// let (header, value) = typed::decode_value(&bytes)?;
/// assert_eq!(header.type_tag, Some(TypeTag::named("pair")));
/// assert_eq!(header.fds, 0);
/// assert!(value.is_array());
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Header {
    /// The format version ([`VERSION`]; another is refused before this).
    pub version: u8,
    /// How the body is encoded (one this build does not know is refused
    /// before this).
    pub encoding: Encoding,
    /// The type tag the sender set, if any.
    pub type_tag: Option<TypeTag>,
    /// How many descriptors the sender passed alongside.
    pub fds: u16,
}

/// What a receiver expects of a header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Expect {
    /// `Some`: the message must carry this tag. `None`: any tag, or none.
    pub(crate) type_tag: Option<TypeTag>,
    /// How many descriptors arrived with the message.
    pub(crate) fds: usize,
}

/// Appends the header and `value`, encoded as `encoding` says, to `out`.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    object: &dyn Fn() -> ObjectName,
    value: &T,
    type_tag: Option<TypeTag>,
    fds: usize,
    encoding: Encoding,
    out: &mut Vec<u8>,
) -> Result<()> {
    let fds = u16::try_from(fds).map_err(|_| Error::LimitExceeded {
        object: object(),
        what: "descriptors in one typed message",
        requested: fds as u64,
        limit: u64::from(u16::MAX),
        set_in: "the typed header's 16-bit count",
    })?;
    let mut header = [0u8; HEADER_LEN];
    header[..4].copy_from_slice(&MAGIC);
    header[4] = VERSION;
    header[5] = encoding.byte();
    header[6..8].copy_from_slice(&fds.to_le_bytes());
    header[8..].copy_from_slice(&type_tag.map_or(0, TypeTag::value).to_le_bytes());
    out.extend_from_slice(&header);
    let encoded = match encoding {
        Encoding::Cbor => ciborium::into_writer(value, &mut *out).map_err(|e| e.to_string()),
        Encoding::MessagePack => {
            rmp_serde::encode::write_named(&mut *out, value).map_err(|e| e.to_string())
        }
    };
    encoded.map_err(|reason| Error::Unsupported {
        object: object(),
        what: format!("encoding a {} as {encoding}", std::any::type_name::<T>()),
        reason,
    })
}

/// Checks the header of `bytes` against `expect`; returns it and the body.
pub(crate) fn check_header<'a>(
    object: &dyn Fn() -> ObjectName,
    bytes: &'a [u8],
    expect: Expect,
) -> Result<(Header, &'a [u8])> {
    let undecodable = |reason: String| Error::Undecodable {
        object: object(),
        expected: "a typed message",
        reason,
        bytes: bytes.to_vec(),
    };
    if bytes.len() < HEADER_LEN || bytes[..4] != MAGIC {
        let start: String = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        return Err(undecodable(if bytes.len() < HEADER_LEN {
            format!("it is shorter than the {HEADER_LEN}-byte typed header (starts with {start:?})")
        } else {
            format!("it has no typed header: it starts with {start:?}, not \"UPCT\"")
        }));
    }
    let mismatch = |what: &'static str, expected: String, found: String| Error::TypedMismatch {
        object: object(),
        what,
        expected,
        found,
    };
    let version = bytes[4];
    if version != VERSION {
        return Err(mismatch(
            "format version",
            VERSION.to_string(),
            version.to_string(),
        ));
    }
    let Some(encoding) = Encoding::from_byte(bytes[5]) else {
        return Err(mismatch(
            "encoding",
            "1 (CBOR) or 2 (MessagePack)".to_owned(),
            bytes[5].to_string(),
        ));
    };
    let fds = u16::from_le_bytes([bytes[6], bytes[7]]);
    let mut tag = [0; 8];
    tag.copy_from_slice(&bytes[8..16]);
    let type_tag = TypeTag::from_value(u64::from_le_bytes(tag));
    if let Some(want) = expect.type_tag {
        if type_tag != Some(want) {
            return Err(mismatch(
                "type tag",
                want.to_string(),
                type_tag.map_or_else(|| "none".to_owned(), |t| t.to_string()),
            ));
        }
    }
    if usize::from(fds) != expect.fds {
        return Err(mismatch(
            "descriptor count",
            if expect.fds == 0 {
                "0 (this receive takes no descriptors: use recv_with_fds)".to_owned()
            } else {
                format!("the {} that arrived with it", expect.fds)
            },
            fds.to_string(),
        ));
    }
    let header = Header {
        version,
        encoding,
        type_tag,
        fds,
    };
    Ok((header, &bytes[HEADER_LEN..]))
}

/// Checks the header, then decodes the body as one `T` with nothing after
/// it. Input is bounded by `bytes`, nesting by [`RECURSION_LIMIT`]: a
/// declared length past the end is an error, not an allocation.
pub(crate) fn decode_checked<T: DeserializeOwned>(
    object: &dyn Fn() -> ObjectName,
    bytes: &[u8],
    expect: Expect,
) -> Result<(Header, T)> {
    let (header, body) = check_header(object, bytes, expect)?;
    let undecodable = |reason: String| Error::Undecodable {
        object: object(),
        expected: std::any::type_name::<T>(),
        reason,
        bytes: bytes.to_vec(),
    };
    let value: T = match header.encoding {
        Encoding::Cbor => decode_cbor(body),
        Encoding::MessagePack => decode_msgpack(body),
    }
    .map_err(undecodable)?;
    Ok((header, value))
}

/// One CBOR item that is all of `body`, or why not.
fn decode_cbor<T: DeserializeOwned>(body: &[u8]) -> std::result::Result<T, String> {
    let mut rest = body;
    // ciborium's own 4 KiB scratch costs a memset per message; strings
    // longer than this one are read in pieces of its size.
    let mut scratch = [0u8; SCRATCH];
    let value: T = ciborium::de::from_reader_with_buffer(&mut rest, &mut scratch)
        .map_err(|err| cbor_error_text(&err))?;
    if !rest.is_empty() {
        return Err(format!("{} bytes follow the value", rest.len()));
    }
    Ok(value)
}

/// One MessagePack object that is all of `body`, or why not.
///
/// Decoded from the slice itself (rmp-serde's `from_read_ref`): a
/// declared string or binary length is checked against the bytes left
/// before anything is read, and nothing is copied into a buffer of its own.
/// That reader does not say where it stopped, so the end is found by
/// asking for one more object: only running out of input right there
/// means the value was all of `body`.
fn decode_msgpack<T: DeserializeOwned>(body: &[u8]) -> std::result::Result<T, String> {
    use rmp_serde::decode::Error as E;
    let mut de = rmp_serde::Deserializer::from_read_ref(body);
    de.set_max_depth(MSGPACK_DEPTH);
    let value = T::deserialize(&mut de).map_err(|err| msgpack_error_text(&err))?;
    // `Nothing` takes no value, nor reads into one: only a marker that is
    // not there gives this error.
    match serde::Deserializer::deserialize_any(&mut de, Nothing) {
        Err(E::InvalidMarkerRead(io)) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Ok(value)
        }
        _ => Err(format!("{} bytes follow the value", trailing_msgpack(body))),
    }
}

/// rmp-serde's depth counter refuses the container that brings it to 0:
/// one more than [`RECURSION_LIMIT`] lets that many nest, as ciborium does.
const MSGPACK_DEPTH: usize = RECURSION_LIMIT + 1;

/// A visitor that accepts no value (every `visit_` is serde's refusal).
struct Nothing;

impl serde::de::Visitor<'_> for Nothing {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nothing after the value")
    }
}

/// How many bytes of `body` follow its first MessagePack object (an error
/// path only: it decodes that object once more, through a reader that
/// says where it stopped).
fn trailing_msgpack(body: &[u8]) -> usize {
    let mut rest = body;
    let mut de = rmp_serde::Deserializer::new(&mut rest);
    de.set_max_depth(MSGPACK_DEPTH);
    let _ = serde::de::IgnoredAny::deserialize(&mut de);
    drop(de);
    rest.len()
}

fn msgpack_error_text(err: &rmp_serde::decode::Error) -> String {
    use rmp_serde::decode::Error as E;
    match err {
        E::InvalidMarkerRead(io) | E::InvalidDataRead(io)
            if io.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            "the MessagePack ends early".to_owned()
        }
        E::DepthLimitExceeded => format!("it nests deeper than the limit of {RECURSION_LIMIT}"),
        other => format!("MessagePack: {other}"),
    }
}

fn cbor_error_text<E: fmt::Debug>(err: &ciborium::de::Error<E>) -> String {
    use ciborium::de::Error as E;
    match err {
        E::Io(io) => format!("the CBOR ends early ({io:?})"),
        E::Syntax(at) => format!("CBOR syntax error at body offset {at}"),
        E::Semantic(Some(at), text) => format!("{text} (at body offset {at})"),
        E::Semantic(None, text) => text.clone(),
        E::RecursionLimitExceeded => {
            format!("it nests deeper than the limit of {RECURSION_LIMIT}")
        }
    }
}

fn standalone() -> ObjectName {
    ObjectName::from("typed message")
}

/// Encodes `value` as a typed message: the header, then the value in the
/// default [`Encoding`] (MessagePack).
///
/// # Errors
/// [`Error::Unsupported`] when `value`'s `Serialize` fails.
///
/// # Examples
/// ```
/// let bytes = unipc::message::typed::encode(&"hi", None)?;
/// assert_eq!(&bytes[..4], b"UPCT");
/// assert_eq!(unipc::message::typed::decode::<String>(&bytes, None)?, "hi");
/// # Ok::<(), unipc::Error>(())
/// ```
pub fn encode<T: Serialize + ?Sized>(value: &T, type_tag: Option<TypeTag>) -> Result<Vec<u8>> {
    encode_as(value, type_tag, Encoding::default())
}

/// Encodes `value` as a typed message in `encoding`.
///
/// # Errors
/// [`Error::Unsupported`] when `value`'s `Serialize` fails.
///
/// # Examples
/// ```
/// use unipc::message::typed::{self, Encoding};
///
/// let cbor = typed::encode_as(&"hi", None, Encoding::Cbor)?;
/// assert_eq!(typed::decode::<String>(&cbor, None)?, "hi");
/// # Ok::<(), unipc::Error>(())
/// ```
pub fn encode_as<T: Serialize + ?Sized>(
    value: &T,
    type_tag: Option<TypeTag>,
    encoding: Encoding,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_into(&standalone, value, type_tag, 0, encoding, &mut out)?;
    Ok(out)
}

/// Decodes a typed message as a `T`; with `type_tag`, only a message that
/// carries that tag.
///
/// # Errors
/// [`Error::TypedMismatch`] for another version, encoding or tag, or a
/// message that says descriptors came with it; [`Error::Undecodable`]
/// (with the bytes) for anything else that is not one `T`.
///
/// # Examples
/// ```
/// use unipc::message::typed::{self, TypeTag};
///
/// let bytes = typed::encode(&7u32, Some(TypeTag::named("a")))?;
/// assert_eq!(typed::decode::<u32>(&bytes, Some(TypeTag::named("a")))?, 7);
/// assert!(matches!(
///     typed::decode::<u32>(&bytes, Some(TypeTag::named("b"))),
///     Err(unipc::Error::TypedMismatch { .. })
/// ));
/// # Ok::<(), unipc::Error>(())
/// ```
pub fn decode<T: DeserializeOwned>(bytes: &[u8], type_tag: Option<TypeTag>) -> Result<T> {
    let expect = Expect { type_tag, fds: 0 };
    decode_checked(&standalone, bytes, expect).map(|(_, value)| value)
}

/// Decodes a typed message without its Rust type, whatever its type tag
/// and descriptor count, as `unipc recv --json --typed` does.
///
/// # Errors
/// As [`decode`], less the tag and descriptor checks.
///
/// # Examples
/// ```
/// let bytes = unipc::message::typed::encode(&[1, 2], None)?;
/// let (_, value) = unipc::message::typed::decode_value(&bytes)?;
/// assert_eq!(value.as_array().map(Vec::len), Some(2));
/// # Ok::<(), unipc::Error>(())
/// ```
pub fn decode_value(bytes: &[u8]) -> Result<(Header, super::Value)> {
    decode_from(&standalone(), bytes, None)
}

/// Decodes a typed message that came through `object` (which errors
/// name) as a `T`, with its header; with `type_tag`, only a message that
/// carries that tag. Whatever descriptor count the header gives is
/// accepted (a receiver that took none can still read the value).
///
/// # Errors
/// As [`decode`], less the descriptor check.
///
/// # Examples
/// ```
/// use unipc::message::typed::{self, Value};
///
/// let bytes = typed::encode(&"x", None)?;
/// let object = unipc::ObjectName::from("posix-mq:/jobs");
/// let (_, value) = typed::decode_from::<Value>(&object, &bytes, None)?;
/// assert_eq!(value.as_text(), Some("x"));
/// let err = typed::decode_from::<Value>(&object, b"plain", None).unwrap_err();
/// assert!(err.to_string().starts_with("posix-mq:/jobs: "));
/// # Ok::<(), unipc::Error>(())
/// ```
pub fn decode_from<T: DeserializeOwned>(
    object: &ObjectName,
    bytes: &[u8],
    type_tag: Option<TypeTag>,
) -> Result<(Header, T)> {
    let expect = Expect {
        type_tag,
        fds: peek_fds(bytes),
    };
    decode_checked(&|| object.clone(), bytes, expect)
}

/// The descriptor count a header claims (0 when there is no header).
fn peek_fds(bytes: &[u8]) -> usize {
    match bytes.get(6..8) {
        Some(&[a, b]) => usize::from(u16::from_le_bytes([a, b])),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Job {
        id: u64,
        name: String,
        args: Vec<String>,
    }

    fn job() -> Job {
        Job {
            id: 7,
            name: "build".into(),
            args: vec!["-j".into(), "2".into()],
        }
    }

    fn object() -> ObjectName {
        "test".into()
    }

    const BOTH: [Encoding; 2] = [Encoding::MessagePack, Encoding::Cbor];

    #[test]
    fn round_trip_with_and_without_a_tag() {
        let tag = TypeTag::named("Job");
        let bytes = encode(&job(), Some(tag)).unwrap();
        assert_eq!(&bytes[..4], b"UPCT");
        assert_eq!(bytes[4], VERSION);
        assert_eq!(bytes[5], Encoding::MessagePack.byte(), "the default");
        for encoding in BOTH {
            let bytes = encode_as(&job(), Some(tag), encoding).unwrap();
            assert_eq!(bytes[5], encoding.byte());
            assert_eq!(decode::<Job>(&bytes, Some(tag)).unwrap(), job());
            assert_eq!(decode::<Job>(&bytes, None).unwrap(), job());
            let untagged = encode_as(&job(), None, encoding).unwrap();
            assert_eq!(decode::<Job>(&untagged, None).unwrap(), job());
            let (header, value) = decode_value(&bytes).unwrap();
            assert_eq!(header.encoding, encoding);
            // Named fields: the value describes itself.
            let map = value.as_map().expect("a struct is a map");
            assert_eq!(map[0].0.as_text(), Some("id"));
        }
    }

    #[test]
    fn every_encoding_byte_round_trips() {
        for encoding in BOTH {
            assert_eq!(Encoding::from_byte(encoding.byte()), Some(encoding));
        }
        assert_eq!(Encoding::from_byte(0), None);
        assert_eq!(Encoding::from_byte(3), None);
    }

    #[test]
    fn another_version_encoding_or_tag_is_refused() {
        let tag = TypeTag::named("Job");
        let good = encode(&job(), Some(tag)).unwrap();
        let mut bytes = good.clone();
        bytes[4] = 2;
        match decode::<Job>(&bytes, None) {
            Err(Error::TypedMismatch {
                what: "format version",
                expected,
                found,
                ..
            }) => assert_eq!((expected.as_str(), found.as_str()), ("1", "2")),
            other => panic!("{other:?}"),
        }
        let mut bytes = good.clone();
        bytes[5] = 9;
        assert!(matches!(
            decode::<Job>(&bytes, None),
            Err(Error::TypedMismatch {
                what: "encoding",
                ..
            })
        ));
        let err = decode::<Job>(&good, Some(TypeTag::named("Other"))).unwrap_err();
        assert!(matches!(
            err,
            Error::TypedMismatch {
                what: "type tag",
                ..
            }
        ));
        assert!(err.to_string().contains(&tag.to_string()), "{err}");
        let untagged = encode(&job(), None).unwrap();
        assert!(matches!(
            decode::<Job>(&untagged, Some(tag)),
            Err(Error::TypedMismatch {
                what: "type tag",
                ..
            })
        ));
    }

    #[test]
    fn garbage_is_undecodable_with_its_bytes() {
        for garbage in [&b""[..], b"hello", b"hello, this is not typed at all"] {
            match decode::<Job>(garbage, None) {
                Err(Error::Undecodable { bytes, .. }) => assert_eq!(bytes, garbage),
                other => panic!("{other:?}"),
            }
        }
        // A good header over a body of another type.
        let bytes = encode(&"a string", None).unwrap();
        match decode::<Job>(&bytes, None) {
            Err(Error::Undecodable {
                bytes: raw,
                expected,
                ..
            }) => {
                assert_eq!(raw, bytes);
                assert!(expected.ends_with("Job"));
            }
            other => panic!("{other:?}"),
        }
        for encoding in BOTH {
            // Trailing bytes after the value: one, a whole value, a marker
            // MessagePack reserves, a cut value.
            for (more, n) in [
                (&[0u8][..], 1),
                (&[0x92, 0, 0], 3),
                (&[0xc1], 1),
                (&[0x92], 1),
            ] {
                let mut bytes = encode_as(&5u8, None, encoding).unwrap();
                bytes.extend_from_slice(more);
                let err = decode::<u8>(&bytes, None).unwrap_err();
                let text = format!("{n} bytes follow");
                assert!(
                    err.to_string().contains(&text),
                    "{encoding} {more:?}: {err}"
                );
            }
            // A body cut short, anywhere.
            let bytes = encode_as(&job(), None, encoding).unwrap();
            for cut in HEADER_LEN..bytes.len() {
                match decode::<Job>(&bytes[..cut], None) {
                    Err(Error::Undecodable { bytes: raw, .. }) => assert_eq!(raw, &bytes[..cut]),
                    other => panic!("{encoding} cut at {cut}: {other:?}"),
                }
            }
            // A good header over a body of another type.
            let bytes = encode_as(&"a string", None, encoding).unwrap();
            assert!(matches!(
                decode::<Job>(&bytes, None),
                Err(Error::Undecodable { .. })
            ));
        }
    }

    /// A header saying `encoding`, then `body`.
    fn body(encoding: Encoding, body: &[u8]) -> Vec<u8> {
        let mut bytes = encode_as(&(), None, encoding).unwrap();
        bytes.truncate(HEADER_LEN);
        bytes.extend_from_slice(body);
        bytes
    }

    /// A header, then a CBOR head declaring `len` for major type `major`,
    /// then a few bytes: a length far past the input.
    fn declaring(major: u8, len: u64) -> Vec<u8> {
        let mut head = vec![(major << 5) | 27];
        head.extend_from_slice(&len.to_be_bytes());
        head.extend_from_slice(b"abc");
        body(Encoding::Cbor, &head)
    }

    /// A header, then a MessagePack marker whose 32-bit length (the most
    /// the format can declare) is 2^32 - 1, then a few bytes.
    fn declaring_msgpack(marker: u8) -> Vec<u8> {
        let mut head = vec![marker];
        head.extend_from_slice(&u32::MAX.to_be_bytes());
        if marker == 0xc9 {
            head.push(1); // ext 32: its type
        }
        head.extend_from_slice(b"abc");
        body(Encoding::MessagePack, &head)
    }

    #[test]
    fn a_huge_declared_length_allocates_nothing_of_it() {
        // Were any of these preallocated, the process would abort on an
        // allocation of 2^62 bytes (or elements) instead of returning.
        let huge = 1u64 << 62;
        let cbor = [(2, "byte string"), (3, "text"), (4, "array"), (5, "map")]
            .map(|(major, what)| (declaring(major, huge), what));
        // MessagePack declares 32 bits at most: the allocation bound (no
        // more than the input, or serde's 1 MiB for a sequence) is
        // counted in tests/alloc.rs, where a 4 GiB allocation that the
        // kernel overcommits would not abort.
        let msgpack = [
            (0xc6, "bin 32"),
            (0xdb, "str 32"),
            (0xdd, "array 32"),
            (0xdf, "map 32"),
            (0xc9, "ext 32"),
        ]
        .map(|(marker, what)| (declaring_msgpack(marker), what));
        for (bytes, what) in cbor.into_iter().chain(msgpack) {
            let e1 = decode::<super::super::Value>(&bytes, None).unwrap_err();
            let e2 = decode::<Vec<u8>>(&bytes, None).unwrap_err();
            let e3 = decode::<String>(&bytes, None).unwrap_err();
            let e4 = decode::<std::collections::HashMap<String, u8>>(&bytes, None).unwrap_err();
            for err in [e1, e2, e3, e4] {
                assert!(matches!(err, Error::Undecodable { .. }), "{what}: {err:?}");
            }
        }
        // serde_bytes-style byte buffers too.
        struct Buf;
        impl<'de> serde::Deserialize<'de> for Buf {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Buf, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = Buf;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("bytes")
                    }
                    fn visit_byte_buf<E>(self, _: Vec<u8>) -> Result<Buf, E> {
                        Ok(Buf)
                    }
                }
                d.deserialize_byte_buf(V)
            }
        }
        assert!(decode::<Buf>(&declaring(2, huge), None).is_err());
        assert!(decode::<Buf>(&declaring_msgpack(0xc6), None).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        // One-element arrays: CBOR 0x81, MessagePack 0x91; and one-entry
        // maps keyed by 0 (MessagePack 0x81 0x00), each around 0.
        let nests = [
            (Encoding::Cbor, &[0x81u8][..]),
            (Encoding::MessagePack, &[0x91]),
            (Encoding::MessagePack, &[0x81, 0x00]),
        ];
        for (encoding, level) in nests {
            let nested = |n: usize| {
                let mut b = level.repeat(n);
                b.push(0x00);
                body(encoding, &b)
            };
            // 100,000 levels.
            let deep = nested(100_000);
            for err in [
                decode::<super::super::Value>(&deep, None).unwrap_err(),
                decode::<serde::de::IgnoredAny>(&deep, None).unwrap_err(),
            ] {
                assert!(
                    err.to_string().contains("nests deeper"),
                    "{encoding}: {err}"
                );
            }
            // At the limit decodes, one past it does not.
            decode::<super::super::Value>(&nested(RECURSION_LIMIT), None).unwrap();
            let over = nested(RECURSION_LIMIT + 1);
            let err = decode::<super::super::Value>(&over, None).unwrap_err();
            assert!(
                err.to_string().contains("nests deeper"),
                "{encoding}: {err}"
            );
        }
    }

    #[test]
    fn descriptor_count_must_match() {
        let mut out = Vec::new();
        encode_into(&object, &1u8, None, 2, Encoding::default(), &mut out).unwrap();
        let expect = |fds| Expect {
            type_tag: None,
            fds,
        };
        assert!(decode_checked::<u8>(&object, &out, expect(2)).is_ok());
        assert!(matches!(
            decode_checked::<u8>(&object, &out, expect(0)),
            Err(Error::TypedMismatch {
                what: "descriptor count",
                ..
            })
        ));
        let (header, _) = decode_value(&out).unwrap();
        assert_eq!(header.fds, 2);
    }

    #[test]
    fn tags_are_fnv1a() {
        // FNV-1a 64 of "a", the published test vector.
        assert_eq!(TypeTag::named("a").value(), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(TypeTag::from_value(0), None);
    }
}
