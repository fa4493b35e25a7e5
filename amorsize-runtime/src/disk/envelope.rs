//! The bytes of one cache file: a fixed header that says what the entry is, where and
//! when it was made, and a checksum, then the payload.
//!
//! Layout (all integers little-endian; offsets in bytes):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `\x89AMSZ\r\n\x1a` |
//! | 8 | 4 | format version ([`FORMAT_VERSION`]) |
//! | 12 | 8 | machine fingerprint hash |
//! | 20 | 8 | creation time, unix seconds |
//! | 28 | 8 | the entry's key (as in its file name) |
//! | 36 | 8 | payload length `n` |
//! | 44 | 8 | FNV-1a of bytes `0..44` followed by the payload |
//! | 52 | n | payload: bincode 2 (serde, `config::standard()`) |
//!
//! The magic and the version stay where they are in every future format, so a file of
//! any version can be told apart from a foreign one and named by its version. The
//! magic is PNG-style: a non-ASCII first byte catches text files, `\r\n` a newline
//! conversion, `\x1a` an end-of-text marker. The checksum covers the header too, so a
//! flipped bit in the creation time or the fingerprint reads as corruption, not as a
//! valid entry of another age or machine.
//!
//! This file is also the disk cache's one seam to bincode (the project is
//! unmaintained, RUSTSEC-2025-0141: it stays behind two small seams, this one and
//! `process/codec.rs`).

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::hash::StableHasher;

/// Marks a file as an amorsize cache entry.
pub(crate) const MAGIC: [u8; 8] = *b"\x89AMSZ\r\n\x1a";
/// Bumped whenever the layout or the payload's meaning changes: entries of another
/// version are ignored and rewritten.
pub(crate) const FORMAT_VERSION: u32 = 3;
/// Bytes before the payload.
pub(crate) const HEADER_LEN: usize = 52;
/// Largest payload accepted, written or read: cache entries are plans and
/// calibrations (kilobytes); anything near this is a bug or not our file, and decoding
/// must not allocate whatever a damaged length field asks for.
pub(crate) const MAX_PAYLOAD: usize = 16 << 20;

/// The bincode configuration of payloads: `standard()` (varint integers: compact for
/// the small counts and durations in plans) with an allocation limit.
fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_PAYLOAD>()
}

/// The fields of a header besides the magic and the checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// Hash of the machine fingerprint the entry was measured on.
    pub fingerprint: u64,
    /// When the entry was written, unix seconds.
    pub created: u64,
    /// The key the entry was written under.
    pub key: u64,
}

/// Why bytes are not a valid entry (without the file's name: the store adds it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// Shorter than its header says (`expected: None`: shorter than a header).
    Truncated {
        /// Bytes present.
        got: u64,
        /// Bytes the header announces.
        expected: Option<u64>,
    },
    /// Does not start with the magic: not an amorsize cache file.
    Foreign,
    /// Written by another format version.
    Version(u32),
    /// Damaged: the checksum, length or payload do not add up.
    Corrupt(String),
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::Truncated {
                got,
                expected: Some(n),
            } => write!(f, "truncated ({got} of {n} bytes)"),
            Invalid::Truncated {
                got,
                expected: None,
            } => {
                write!(
                    f,
                    "truncated ({got} bytes, shorter than its {HEADER_LEN}-byte header)"
                )
            }
            Invalid::Foreign => f.write_str("not an amorsize cache file (bad magic)"),
            Invalid::Version(v) => write!(
                f,
                "written by cache format version {v}, this is version {FORMAT_VERSION}"
            ),
            Invalid::Corrupt(why) => write!(f, "corrupt ({why})"),
        }
    }
}

/// Encodes `value` into a complete file image. Fails only if the value cannot be
/// encoded or is larger than [`MAX_PAYLOAD`].
pub(crate) fn encode<T: Serialize + ?Sized>(header: Header, value: &T) -> Result<Vec<u8>, String> {
    let payload = bincode::serde::encode_to_vec(value, config()).map_err(|e| e.to_string())?;
    if payload.len() > MAX_PAYLOAD {
        return Err(format!(
            "encoded size {} bytes exceeds the limit of {MAX_PAYLOAD} bytes",
            payload.len()
        ));
    }
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&header.fingerprint.to_le_bytes());
    out.extend_from_slice(&header.created.to_le_bytes());
    out.extend_from_slice(&header.key.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    let sum = checksum(&out, &payload);
    out.extend_from_slice(&sum.to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Checks a file image and splits it into its header and payload. Checks in this
/// order, so each cause is named precisely: magic, version, length, checksum.
pub(crate) fn open(bytes: &[u8]) -> Result<(Header, &[u8]), Invalid> {
    let got = bytes.len() as u64;
    if bytes.len() < MAGIC.len() {
        // A prefix of the magic is an entry cut short; anything else is foreign.
        return Err(if MAGIC.starts_with(bytes) {
            Invalid::Truncated {
                got,
                expected: None,
            }
        } else {
            Invalid::Foreign
        });
    }
    if bytes[..MAGIC.len()] != MAGIC {
        return Err(Invalid::Foreign);
    }
    if bytes.len() < 12 {
        return Err(Invalid::Truncated {
            got,
            expected: None,
        });
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != FORMAT_VERSION {
        return Err(Invalid::Version(version));
    }
    if bytes.len() < HEADER_LEN {
        return Err(Invalid::Truncated {
            got,
            expected: None,
        });
    }
    let field = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let header = Header {
        fingerprint: field(12),
        created: field(20),
        key: field(28),
    };
    let len = field(36);
    if len > MAX_PAYLOAD as u64 {
        return Err(Invalid::Corrupt(format!(
            "payload length {len} exceeds the limit of {MAX_PAYLOAD} bytes"
        )));
    }
    let expected = HEADER_LEN as u64 + len;
    if got < expected {
        return Err(Invalid::Truncated {
            got,
            expected: Some(expected),
        });
    }
    if got > expected {
        return Err(Invalid::Corrupt(format!(
            "{} bytes after the payload",
            got - expected
        )));
    }
    let payload = &bytes[HEADER_LEN..];
    if checksum(&bytes[..44], payload) != field(44) {
        return Err(Invalid::Corrupt("checksum mismatch".to_owned()));
    }
    Ok((header, payload))
}

/// Decodes a payload that [`open`] accepted; it must be exactly one `T`.
pub(crate) fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, Invalid> {
    match bincode::serde::decode_from_slice::<T, _>(payload, config()) {
        Ok((value, used)) if used == payload.len() => Ok(value),
        Ok((_, used)) => Err(Invalid::Corrupt(format!(
            "{} bytes left after decoding the payload",
            payload.len() - used
        ))),
        Err(e) => Err(Invalid::Corrupt(format!("payload does not decode: {e}"))),
    }
}

/// The checksum of a header's first 44 bytes and the payload.
fn checksum(header: &[u8], payload: &[u8]) -> u64 {
    let mut h = StableHasher::new();
    h.write(header);
    h.write(payload);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: Header = Header {
        fingerprint: 0x1234,
        created: 1_700_000_000,
        key: 0xabcd,
    };

    #[test]
    fn round_trip() {
        let value = (7u64, "seven".to_owned(), vec![1.5f64, 2.5]);
        let bytes = encode(HEADER, &value).unwrap();
        let (header, payload) = open(&bytes).unwrap();
        assert_eq!(header, HEADER);
        assert_eq!(decode::<(u64, String, Vec<f64>)>(payload).unwrap(), value);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_caught() {
        let bytes = encode(HEADER, &vec![3u32; 40]).unwrap();
        for len in 0..bytes.len() {
            match open(&bytes[..len]) {
                Err(Invalid::Truncated { got, .. }) => assert_eq!(got, len as u64),
                other => panic!("{len} bytes: {other:?}"),
            }
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[i] ^= 1 << bit;
                assert!(open(&damaged).is_err(), "byte {i} bit {bit} went unnoticed");
            }
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(open(&longer), Err(Invalid::Corrupt(_))));
    }

    #[test]
    fn names_foreign_and_other_versions() {
        assert_eq!(open(b"hello, world, this is text"), Err(Invalid::Foreign));
        assert_eq!(open(b"h"), Err(Invalid::Foreign));
        let mut bytes = encode(HEADER, &1u8).unwrap();
        bytes[8..12].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(open(&bytes), Err(Invalid::Version(7)));
        assert!(Invalid::Version(7).to_string().contains("version 7"));
    }

    #[test]
    fn a_wrong_type_is_corrupt_not_a_panic() {
        let bytes = encode(HEADER, &(1u8, 2u8, 3u8)).unwrap();
        let (_, payload) = open(&bytes).unwrap();
        assert!(matches!(decode::<u8>(payload), Err(Invalid::Corrupt(_))));
        assert!(matches!(
            decode::<String>(payload),
            Err(Invalid::Corrupt(_))
        ));
    }
}
