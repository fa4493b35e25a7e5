//! The process backend's seam where values become bytes and back: bincode 2 over
//! serde, fixed-width integers, with a size limit. Only this file and the disk cache's
//! `disk/envelope.rs` name bincode, so replacing it (the project is unmaintained,
//! RUSTSEC-2025-0141) touches those two files.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest encoded value: an item's bytes must fit in one frame with its header.
pub(crate) const MAX_VALUE_BYTES: usize = super::frame::MAX_FRAME_BYTES - 64;

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_fixed_int_encoding()
        .with_limit::<MAX_VALUE_BYTES>()
}

/// A value could not be encoded or decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CodecError(pub String);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Appends the encoding of `value` to `out`. On error `out` is left as it was.
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let start = out.len();
    let r = bincode::serde::encode_into_std_write(value, out, config());
    let len = out.len() - start;
    match r {
        Ok(_) if len <= MAX_VALUE_BYTES => Ok(()),
        Ok(_) => {
            out.truncate(start);
            Err(CodecError(format!(
                "encoded size {len} bytes exceeds the limit of {MAX_VALUE_BYTES} bytes"
            )))
        }
        Err(e) => {
            out.truncate(start);
            Err(CodecError(format!("encode: {e}")))
        }
    }
}

/// Decodes one value that must span all of `bytes`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bincode::serde::decode_from_slice::<T, _>(bytes, config()) {
        Ok((v, used)) if used == bytes.len() => Ok(v),
        Ok((_, used)) => Err(CodecError(format!(
            "decode: {} trailing bytes after the value",
            bytes.len() - used
        ))),
        Err(e) => Err(CodecError(format!("decode: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let mut buf = vec![9u8];
        encode(&(7u64, "hi".to_string()), &mut buf).unwrap();
        let v: (u64, String) = decode(&buf[1..]).unwrap();
        assert_eq!(v, (7, "hi".to_string()));
        assert!(decode::<(u64, String)>(&buf[1..buf.len() - 1]).is_err());
        assert!(
            decode::<u32>(&buf[1..]).is_err(),
            "trailing bytes are an error"
        );
        let huge_len = [0xffu8; 8];
        assert!(
            decode::<Vec<u8>>(&huge_len).is_err(),
            "a huge length is refused"
        );
    }
}
