//! The binary wire format between processes: one format-version byte, then
//! the value in bincode's standard encoding (varint integers, little endian).
//! Decoding takes a size limit, so hostile or corrupt bytes cost bounded
//! memory and always come back as an error, never a panic.

use std::fmt;

use serde::{Serialize, de::DeserializeOwned};

/// The first byte of every encoded message. Bumped on any incompatible change.
pub const FORMAT_VERSION: u8 = 4;

/// The largest message, in bytes, that is encoded or decoded.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_MESSAGE_BYTES>()
}

/// Why bytes could not be decoded (or a value encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// No bytes at all.
    Empty,
    /// The version byte is not [`FORMAT_VERSION`].
    UnsupportedVersion(u8),
    /// Longer than [`MAX_MESSAGE_BYTES`].
    TooLarge(usize),
    /// The payload is not a valid encoding of the expected type.
    Malformed(String),
    /// A valid value followed by extra bytes.
    TrailingBytes(usize),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Empty => f.write_str("empty message"),
            CodecError::UnsupportedVersion(v) => {
                write!(f, "format version {v}, expected {FORMAT_VERSION}")
            }
            CodecError::TooLarge(n) => {
                write!(f, "message of {n} bytes exceeds {MAX_MESSAGE_BYTES}")
            }
            CodecError::Malformed(e) => write!(f, "malformed message: {e}"),
            CodecError::TrailingBytes(n) => write!(f, "{n} trailing bytes after message"),
        }
    }
}

impl std::error::Error for CodecError {}

/// Appends the encoding of `value` to `out` (reusing its allocation).
pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let start = out.len();
    out.push(FORMAT_VERSION);
    if let Err(e) = bincode::serde::encode_into_std_write(value, out, config()) {
        out.truncate(start);
        return Err(CodecError::Malformed(e.to_string()));
    }
    let len = out.len() - start;
    if len > MAX_MESSAGE_BYTES {
        out.truncate(start);
        return Err(CodecError::TooLarge(len));
    }
    Ok(())
}

/// The encoding of `value` in a new buffer.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(64);
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Decodes exactly one value from `bytes`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(CodecError::TooLarge(bytes.len()));
    }
    match decode_first(bytes)? {
        (value, used) if used == bytes.len() => Ok(value),
        (_, used) => Err(CodecError::TrailingBytes(bytes.len() - used)),
    }
}

/// Decodes a run of encodings written back to back (by [`encode_into`] on
/// one buffer): each encoding knows its own end, so a run needs no framing,
/// and a single encoding is a run of one.
pub fn decode_run<T: DeserializeOwned>(mut bytes: &[u8]) -> Result<Vec<T>, CodecError> {
    if bytes.is_empty() {
        return Err(CodecError::Empty);
    }
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (value, used) = decode_first(bytes)?;
        out.push(value);
        bytes = &bytes[used..];
    }
    Ok(out)
}

/// The first value in `bytes` and how many bytes it took.
fn decode_first<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), CodecError> {
    let (&version, payload) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::UnsupportedVersion(version));
    }
    let (value, used) = bincode::serde::decode_from_slice(payload, config())
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    Ok((value, used + 1))
}
