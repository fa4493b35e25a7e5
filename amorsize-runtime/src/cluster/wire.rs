//! Chunks and results as JetStream message bodies.
//!
//! A body is `[u32 header length][header][section]`, little-endian. The header is a
//! serde struct through the process backend's codec (bincode, size-limited); the
//! section holds the items, each length-prefixed, raw: they are already encoded by
//! the task's codec. A section too big for one message goes to the broker's object
//! store and the header names the object instead. Everything read from the broker is
//! checked against the lengths it declares: a malformed or foreign body is an error
//! for that message, never a panic or an allocation it asks for.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::PayloadKind;
use crate::process::codec;

/// The wire's version: a driver and worker must agree.
pub(crate) const VERSION: u16 = 1;
/// Largest header accepted.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// What a malformed body looked like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WireError(pub String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad(what: impl Into<String>) -> WireError {
    WireError(what.into())
}

/// A chunk of one job, for the workers of one build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChunkHeader {
    pub version: u16,
    /// The driver's registry hash: only a worker of the same build may run it.
    pub build: u64,
    /// The job's unguessable id.
    pub job: String,
    /// The chunk's sequence number within the job.
    pub seq: u64,
    /// The task's index in the registry, and its key to check it by.
    pub task: u32,
    pub module: String,
    pub name: String,
    pub signature: String,
    /// The object holding the items, when they did not fit in the message.
    pub object: Option<String>,
}

/// What became of a chunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Status {
    /// Every item ran: the section holds one outcome per item.
    Done,
    /// The worker would not run the chunk; why.
    Refused(String),
}

/// A chunk's result, from the worker that ran it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ResultHeader {
    pub version: u16,
    /// The worker's registry hash.
    pub build: u64,
    pub job: String,
    pub seq: u64,
    /// Which worker: host and process id, for messages.
    pub worker: String,
    pub status: Status,
    /// The object holding the outcomes, when they did not fit in the message.
    pub object: Option<String>,
}

/// One item's outcome on a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome<'a> {
    /// The encoded output.
    Output(&'a [u8]),
    /// The task could not run it (its input did not decode, its output did not encode).
    Failed(&'a str),
    /// The task panicked.
    Panicked(&'a str, PayloadKind),
}

/// Writes `[u32 len][header]` into `out` (cleared first); the section follows.
pub(crate) fn start<H: Serialize>(header: &H, out: &mut Vec<u8>) -> Result<(), WireError> {
    out.clear();
    out.extend_from_slice(&[0; 4]);
    codec::encode(header, out).map_err(|e| bad(format!("header: {e}")))?;
    let len = out.len() - 4;
    if len > MAX_HEADER_BYTES {
        return Err(bad(format!("header of {len} bytes")));
    }
    out[..4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

/// Splits a body into its decoded header and its section.
pub(crate) fn split<H: serde::de::DeserializeOwned>(body: &[u8]) -> Result<(H, &[u8]), WireError> {
    let (len, rest) = take_u32(body).ok_or_else(|| bad("a body shorter than its header length"))?;
    let len = len as usize;
    if len > MAX_HEADER_BYTES || len > rest.len() {
        return Err(bad(format!(
            "a header length of {len} bytes in a body of {}",
            body.len()
        )));
    }
    let header = codec::decode(&rest[..len]).map_err(|e| bad(format!("header: {e}")))?;
    Ok((header, &rest[len..]))
}

fn take_u32(b: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = b.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*head), rest))
}

/// Appends an items section: `[u32 count]([u32 len][bytes])*`.
pub(crate) fn items<'a>(items: impl ExactSizeIterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    out.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for item in items {
        out.extend_from_slice(&(item.len() as u32).to_le_bytes());
        out.extend_from_slice(item);
    }
}

/// The items of a section; `Err` if its lengths do not add up.
pub(crate) fn parse_items(section: &[u8]) -> Result<Vec<&[u8]>, WireError> {
    let (count, mut rest) = take_u32(section).ok_or_else(|| bad("an empty items section"))?;
    // Each item takes at least its length: a count beyond that is a lie.
    if count as usize > rest.len() / 4 + 1 {
        return Err(bad(format!(
            "{count} items in a section of {} bytes",
            section.len()
        )));
    }
    let mut out = Vec::with_capacity(count as usize);
    for i in 0..count {
        let (len, after) = take_u32(rest).ok_or_else(|| bad(format!("item {i} is cut off")))?;
        let len = len as usize;
        if len > after.len() {
            return Err(bad(format!(
                "item {i} claims {len} bytes, {} left",
                after.len()
            )));
        }
        out.push(&after[..len]);
        rest = &after[len..];
    }
    if !rest.is_empty() {
        return Err(bad(format!("{} bytes after the last item", rest.len())));
    }
    Ok(out)
}

const OUTPUT: u8 = 0;
const FAILED: u8 = 1;
const PANICKED_OWNED: u8 = 2;
const PANICKED_STATIC: u8 = 3;

/// Appends one outcome to an outcomes section (whose count `outcomes_start` wrote).
pub(crate) fn push_outcome(outcome: &Outcome<'_>, out: &mut Vec<u8>) {
    let (tag, bytes) = match outcome {
        Outcome::Output(b) => (OUTPUT, *b),
        Outcome::Failed(m) => (FAILED, m.as_bytes()),
        Outcome::Panicked(m, PayloadKind::Owned) => (PANICKED_OWNED, m.as_bytes()),
        Outcome::Panicked(m, PayloadKind::Static) => (PANICKED_STATIC, m.as_bytes()),
    };
    out.push(tag);
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Starts an outcomes section of `count` outcomes.
pub(crate) fn outcomes_start(count: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&(count as u32).to_le_bytes());
}

/// The outcomes of a section, which must be exactly `expected` of them.
pub(crate) fn parse_outcomes(
    section: &[u8],
    expected: usize,
) -> Result<Vec<Outcome<'_>>, WireError> {
    let (count, mut rest) = take_u32(section).ok_or_else(|| bad("an empty outcomes section"))?;
    if count as usize != expected {
        return Err(bad(format!(
            "{count} outcomes for a chunk of {expected} items"
        )));
    }
    let mut out = Vec::with_capacity(expected);
    for i in 0..count {
        let (&tag, after) = rest
            .split_first()
            .ok_or_else(|| bad(format!("outcome {i} is cut off")))?;
        let (len, after) = take_u32(after).ok_or_else(|| bad(format!("outcome {i} is cut off")))?;
        let len = len as usize;
        if len > after.len() {
            return Err(bad(format!(
                "outcome {i} claims {len} bytes, {} left",
                after.len()
            )));
        }
        let bytes = &after[..len];
        rest = &after[len..];
        let text = || {
            std::str::from_utf8(bytes)
                .map_err(|_| bad(format!("outcome {i}: a message that is not UTF-8")))
        };
        out.push(match tag {
            OUTPUT => Outcome::Output(bytes),
            FAILED => Outcome::Failed(text()?),
            PANICKED_OWNED => Outcome::Panicked(text()?, PayloadKind::Owned),
            PANICKED_STATIC => Outcome::Panicked(text()?, PayloadKind::Static),
            t => return Err(bad(format!("outcome {i} has an unknown tag {t}"))),
        });
    }
    if !rest.is_empty() {
        return Err(bad(format!("{} bytes after the last outcome", rest.len())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> ChunkHeader {
        ChunkHeader {
            version: VERSION,
            build: 7,
            job: "j".into(),
            seq: 3,
            task: 1,
            module: "m".into(),
            name: "f".into(),
            signature: "fn(u64) -> u64".into(),
            object: None,
        }
    }

    #[test]
    fn chunks_round_trip() {
        let mut body = Vec::new();
        start(&header(), &mut body).unwrap();
        let payloads: [&[u8]; 3] = [b"ab", b"", b"xyz"];
        items(payloads.iter().copied(), &mut body);
        let (h, section): (ChunkHeader, _) = split(&body).unwrap();
        assert_eq!(h, header());
        assert_eq!(parse_items(section).unwrap(), payloads.to_vec());
    }

    #[test]
    fn outcomes_round_trip() {
        let mut body = Vec::new();
        outcomes_start(3, &mut body);
        let all = [
            Outcome::Output(b"1"),
            Outcome::Failed("input: bad"),
            Outcome::Panicked("boom", PayloadKind::Static),
        ];
        for o in &all {
            push_outcome(o, &mut body);
        }
        assert_eq!(parse_outcomes(&body, 3).unwrap(), all.to_vec());
        assert!(
            parse_outcomes(&body, 2).is_err(),
            "a count that is not the chunk's"
        );
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let mut body = Vec::new();
        start(&header(), &mut body).unwrap();
        items([b"abc".as_slice()].into_iter(), &mut body);
        for cut in 0..body.len() {
            let r = split::<ChunkHeader>(&body[..cut]).and_then(|(_, s)| parse_items(s).map(drop));
            assert!(r.is_err(), "cut at {cut}");
        }
        assert!(split::<ChunkHeader>(&[0xff, 0xff, 0xff, 0xff, 1]).is_err());
        assert!(
            parse_items(&[0xff, 0xff, 0xff, 0x7f]).is_err(),
            "a huge count"
        );
        assert!(
            parse_outcomes(&[1, 0, 0, 0, 9, 0, 0, 0, 0], 1).is_err(),
            "unknown tag"
        );
    }
}
