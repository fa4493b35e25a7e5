//! Frames of the worker protocol: `[u32 length, little-endian][tag u8][fields]`, the
//! length counting the tag and fields, at most [`MAX_FRAME_BYTES`].
//!
//! Parent to worker: `Task` (which registered task the next items are for: its
//! [`WireId`], with module path, name and signature to check), `Item` (an index and
//! the encoded input), `Ping` (answered in order, so the parent knows when the worker
//! reached the items that follow it).
//! Worker to parent: `Hello` (protocol and registry hash, first thing), one reply per
//! item (`Output`, `Panicked` or `Failed`), `Pong`, `Bye` (idle timeout: nothing more
//! was read) and `Fatal` (a protocol error, then the worker exits).
//!
//! The fields are a fixed little-endian layout written and parsed here by hand, with
//! every length checked against what is left; item payloads are opaque bytes from
//! [`super::codec`]. Reading a frame never allocates more than the bytes that actually
//! arrived, so a garbage length cannot exhaust memory.
//!
//! Why by hand and not derived through [`super::codec`]: an item's payload is already
//! encoded, and the frame must carry it as it is, borrowed from the read buffer, not
//! copied into a `Vec` and encoded a second time (big items would pay twice); the
//! parent writes a whole batch of frames into one buffer with a length patched in
//! afterwards; and the parent and the worker must agree on these few bytes even when
//! the codec's own format changes (the handshake's `Hello` is parsed before anything
//! else is trusted). The layout is ten small frames, each covered by the round-trip,
//! truncation and mutation tests below.

use std::fmt;
use std::io::{self, Read};

use super::registry::{TaskEntry, WireId};
use crate::error::PayloadKind;

/// Largest frame accepted or written (1 GiB).
pub(crate) const MAX_FRAME_BYTES: usize = 1 << 30;
/// First field of `Hello`: "AMZ1".
pub(crate) const MAGIC: u32 = 0x414d_5a31;
/// Version of this protocol; parent and worker must agree.
pub(crate) const PROTOCOL: u32 = 2;

const T_TASK: u8 = 1;
const T_ITEM: u8 = 2;
const T_PING: u8 = 3;
const T_HELLO: u8 = 16;
const T_OUTPUT: u8 = 17;
const T_PANICKED: u8 = 18;
const T_FAILED: u8 = 19;
const T_PONG: u8 = 20;
const T_BYE: u8 = 21;
const T_FATAL: u8 = 22;
/// Set on `T_PANICKED` when the panic's payload was a `&'static str`.
const STATIC_PAYLOAD: u8 = 0x80;

/// A frame from the parent, borrowing from the frame buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToWorker<'a> {
    /// The following items are for this task.
    Task {
        id: WireId,
        module: &'a str,
        name: &'a str,
        signature: &'a str,
    },
    /// One item: its index in the job and its encoded input.
    Item { index: u64, payload: &'a [u8] },
    /// Answer with `Pong` carrying the same nonce.
    Ping { nonce: u64 },
}

/// A frame from a worker.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FromWorker {
    /// The first frame a worker sends.
    Hello {
        magic: u32,
        protocol: u32,
        registry: u64,
        pid: u32,
    },
    /// The encoded output of an item.
    Output { index: u64, payload: Vec<u8> },
    /// The task panicked on the item; `payload` says whether the payload was a
    /// `&'static str`.
    Panicked {
        index: u64,
        message: String,
        payload: PayloadKind,
    },
    /// The item's input could not be decoded or its output encoded.
    Failed { index: u64, message: String },
    /// The answer to `Ping`.
    Pong { nonce: u64 },
    /// The worker was idle too long and exits without having read anything more.
    Bye,
    /// The worker hit a protocol error and exits.
    Fatal { message: String },
}

/// Why a frame could not be read or understood.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// The pipe failed.
    Io(io::Error),
    /// The stream ended inside a frame.
    Truncated { expected: usize, got: usize },
    /// The length prefix is 0 or above [`MAX_FRAME_BYTES`].
    BadLength(u64),
    /// The frame's contents do not parse.
    Malformed(String),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "pipe error: {e}"),
            FrameError::Truncated { expected, got } => {
                write!(f, "truncated frame: {got} of {expected} bytes")
            }
            FrameError::BadLength(n) => {
                write!(f, "bad frame length {n} (must be 1..={MAX_FRAME_BYTES})")
            }
            FrameError::Malformed(why) => write!(f, "malformed frame: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Reads one frame's body (tag and fields) into `buf`. `Ok(false)` is a clean end of
/// stream before a frame; an end inside a frame is [`FrameError::Truncated`].
pub(crate) fn read_frame<R: Read>(r: &mut R, buf: &mut Vec<u8>) -> Result<bool, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(FrameError::Truncated { expected: 4, got }),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME_BYTES {
        return Err(FrameError::BadLength(len as u64));
    }
    buf.clear();
    // `take` + `read_to_end` grows the buffer only as bytes arrive.
    let got = r
        .take(len as u64)
        .read_to_end(buf)
        .map_err(FrameError::Io)?;
    if got < len {
        return Err(FrameError::Truncated { expected: len, got });
    }
    Ok(true)
}

/// Starts a frame with `tag` in `out`; returns where its length goes.
fn begin(out: &mut Vec<u8>, tag: u8) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(tag);
    at
}

/// Writes the length of the frame that began at `at`.
fn end(out: &mut [u8], at: usize) -> Result<(), FrameError> {
    let len = out.len() - at - 4;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::BadLength(len as u64));
    }
    out[at..at + 4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Appends a `Task` frame.
pub(crate) fn task(out: &mut Vec<u8>, task: &'static TaskEntry) {
    let at = begin(out, T_TASK);
    out.extend_from_slice(&task.wire_id().0.to_le_bytes());
    put_str(out, task.module());
    put_str(out, task.name());
    put_str(out, task.signature());
    // Names are short: far below the limit.
    let _ = end(out, at);
}

/// Appends an `Item` frame; fails (leaving `out` as it was) if `payload` is too big.
pub(crate) fn item(out: &mut Vec<u8>, index: u64, payload: &[u8]) -> Result<(), FrameError> {
    let at = begin(out, T_ITEM);
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(payload);
    end(out, at).inspect_err(|_| out.truncate(at))
}

/// Appends a `Ping` frame.
pub(crate) fn ping(out: &mut Vec<u8>, nonce: u64) {
    let at = begin(out, T_PING);
    out.extend_from_slice(&nonce.to_le_bytes());
    let _ = end(out, at);
}

/// Appends a `Hello` frame.
pub(crate) fn hello(out: &mut Vec<u8>, registry: u64, pid: u32) {
    let at = begin(out, T_HELLO);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&PROTOCOL.to_le_bytes());
    out.extend_from_slice(&registry.to_le_bytes());
    out.extend_from_slice(&pid.to_le_bytes());
    let _ = end(out, at);
}

/// Appends an `Output` frame; fails (leaving `out` as it was) if `payload` is too big.
pub(crate) fn output(out: &mut Vec<u8>, index: u64, payload: &[u8]) -> Result<(), FrameError> {
    let at = begin(out, T_OUTPUT);
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(payload);
    end(out, at).inspect_err(|_| out.truncate(at))
}

fn with_message(out: &mut Vec<u8>, tag: u8, index: u64, message: &str) {
    let at = begin(out, tag);
    out.extend_from_slice(&index.to_le_bytes());
    // A message is cut well below the frame limit (at a char boundary).
    let mut cut = message.len().min(1 << 20);
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    out.extend_from_slice(&message.as_bytes()[..cut]);
    let _ = end(out, at);
}

/// Appends a `Panicked` frame: the payload's kind travels in the tag's high bit.
pub(crate) fn panicked(out: &mut Vec<u8>, index: u64, message: &str, payload: PayloadKind) {
    let tag = match payload {
        PayloadKind::Owned => T_PANICKED,
        PayloadKind::Static => T_PANICKED | STATIC_PAYLOAD,
    };
    with_message(out, tag, index, message)
}

/// Appends a `Failed` frame.
pub(crate) fn failed(out: &mut Vec<u8>, index: u64, message: &str) {
    with_message(out, T_FAILED, index, message)
}

/// Appends a `Pong` frame.
pub(crate) fn pong(out: &mut Vec<u8>, nonce: u64) {
    let at = begin(out, T_PONG);
    out.extend_from_slice(&nonce.to_le_bytes());
    let _ = end(out, at);
}

/// Appends a `Bye` frame.
pub(crate) fn bye(out: &mut Vec<u8>) {
    let at = begin(out, T_BYE);
    let _ = end(out, at);
}

/// Appends a `Fatal` frame.
pub(crate) fn fatal(out: &mut Vec<u8>, message: &str) {
    with_message(out, T_FATAL, 0, message)
}

/// A bounds-checked reader over a frame body.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], FrameError> {
        if self.rest.len() < n {
            return Err(FrameError::Malformed(format!(
                "{what}: needs {n} bytes, {} left",
                self.rest.len()
            )));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u32(&mut self, what: &str) -> Result<u32, FrameError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64, FrameError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn str(&mut self, what: &str) -> Result<&'a str, FrameError> {
        let n = self.u32(what)? as usize;
        let b = self.take(n, what)?;
        std::str::from_utf8(b).map_err(|_| FrameError::Malformed(format!("{what}: not UTF-8")))
    }

    fn rest_str(&mut self, what: &str) -> Result<String, FrameError> {
        let b = std::mem::take(&mut self.rest);
        String::from_utf8(b.to_vec())
            .map_err(|_| FrameError::Malformed(format!("{what}: not UTF-8")))
    }

    fn done(&self, what: &str) -> Result<(), FrameError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Malformed(format!(
                "{what}: {} unexpected trailing bytes",
                self.rest.len()
            )))
        }
    }
}

fn split(body: &[u8]) -> Result<(u8, Cursor<'_>), FrameError> {
    match body.split_first() {
        Some((&tag, rest)) => Ok((tag, Cursor { rest })),
        None => Err(FrameError::Malformed("empty frame".to_string())),
    }
}

/// Parses a frame body read by a worker.
pub(crate) fn parse_to_worker(body: &[u8]) -> Result<ToWorker<'_>, FrameError> {
    let (tag, mut c) = split(body)?;
    let msg = match tag {
        T_TASK => ToWorker::Task {
            id: WireId(c.u32("task id")?),
            module: c.str("task module")?,
            name: c.str("task name")?,
            signature: c.str("task signature")?,
        },
        T_ITEM => {
            let index = c.u64("item index")?;
            let payload = std::mem::take(&mut c.rest);
            ToWorker::Item { index, payload }
        }
        T_PING => ToWorker::Ping {
            nonce: c.u64("ping")?,
        },
        t => {
            return Err(FrameError::Malformed(format!(
                "unknown tag {t} from the parent"
            )));
        }
    };
    c.done("frame from the parent")?;
    Ok(msg)
}

const STATIC_PANICKED: u8 = T_PANICKED | STATIC_PAYLOAD;

/// Parses a frame body read by the parent.
pub(crate) fn parse_from_worker(body: &[u8]) -> Result<FromWorker, FrameError> {
    let (tag, mut c) = split(body)?;
    let msg = match tag {
        T_HELLO => FromWorker::Hello {
            magic: c.u32("hello magic")?,
            protocol: c.u32("hello protocol")?,
            registry: c.u64("hello registry")?,
            pid: c.u32("hello pid")?,
        },
        T_OUTPUT => FromWorker::Output {
            index: c.u64("output index")?,
            payload: std::mem::take(&mut c.rest).to_vec(),
        },
        T_PANICKED | STATIC_PANICKED => FromWorker::Panicked {
            index: c.u64("panic index")?,
            message: c.rest_str("panic message")?,
            payload: if tag == STATIC_PANICKED {
                PayloadKind::Static
            } else {
                PayloadKind::Owned
            },
        },
        T_FAILED => FromWorker::Failed {
            index: c.u64("failure index")?,
            message: c.rest_str("failure message")?,
        },
        T_PONG => FromWorker::Pong {
            nonce: c.u64("pong")?,
        },
        T_BYE => FromWorker::Bye,
        T_FATAL => {
            c.u64("fatal")?;
            FromWorker::Fatal {
                message: c.rest_str("fatal message")?,
            }
        }
        t => {
            return Err(FrameError::Malformed(format!(
                "unknown tag {t} from a worker"
            )));
        }
    };
    c.done("frame from a worker")?;
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8]) -> Vec<Result<FromWorker, String>> {
        let mut r = bytes;
        let mut buf = Vec::new();
        let mut v = Vec::new();
        loop {
            match read_frame(&mut r, &mut buf) {
                Ok(true) => v.push(parse_from_worker(&buf).map_err(|e| e.to_string())),
                Ok(false) => return v,
                Err(e) => {
                    v.push(Err(e.to_string()));
                    return v;
                }
            }
        }
    }

    #[test]
    fn frames_round_trip() {
        let mut out = Vec::new();
        hello(&mut out, 42, 7);
        output(&mut out, 3, b"abc").unwrap();
        panicked(&mut out, 4, "boom", PayloadKind::Owned);
        panicked(&mut out, 6, "literal", PayloadKind::Static);
        failed(&mut out, 5, "bad");
        pong(&mut out, 9);
        bye(&mut out);
        fatal(&mut out, "no");
        let got: Vec<_> = read_all(&out).into_iter().map(Result::unwrap).collect();
        assert_eq!(
            got,
            vec![
                FromWorker::Hello {
                    magic: MAGIC,
                    protocol: PROTOCOL,
                    registry: 42,
                    pid: 7
                },
                FromWorker::Output {
                    index: 3,
                    payload: b"abc".to_vec()
                },
                FromWorker::Panicked {
                    index: 4,
                    message: "boom".into(),
                    payload: PayloadKind::Owned,
                },
                FromWorker::Panicked {
                    index: 6,
                    message: "literal".into(),
                    payload: PayloadKind::Static,
                },
                FromWorker::Failed {
                    index: 5,
                    message: "bad".into()
                },
                FromWorker::Pong { nonce: 9 },
                FromWorker::Bye,
                FromWorker::Fatal {
                    message: "no".into()
                },
            ]
        );

        let mut out = Vec::new();
        task(&mut out, &crate::process::registry::ECHO);
        item(&mut out, 11, &[1, 2]).unwrap();
        ping(&mut out, 5);
        let mut r = &out[..];
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        while read_frame(&mut r, &mut buf).unwrap() {
            seen.push(format!("{:?}", parse_to_worker(&buf).unwrap()));
        }
        assert_eq!(seen.len(), 3);
        assert!(seen[0].contains("fn(u64) -> u64"), "{}", seen[0]);
        assert!(seen[1].contains("index: 11"));
    }

    #[test]
    fn malformed_and_truncated_frames_are_errors() {
        let mut good = Vec::new();
        output(&mut good, 1, b"xyz").unwrap();
        // Truncated in the length, in the body.
        for cut in [2, 6, good.len() - 1] {
            let r = read_all(&good[..cut]);
            assert!(
                r.last()
                    .unwrap()
                    .as_ref()
                    .unwrap_err()
                    .contains("truncated"),
                "{r:?}"
            );
        }
        // A zero or absurd length.
        assert!(
            read_all(&[0, 0, 0, 0])[0]
                .as_ref()
                .unwrap_err()
                .contains("length")
        );
        assert!(
            read_all(&[0xff, 0xff, 0xff, 0xff, 1])[0]
                .as_ref()
                .unwrap_err()
                .contains("length")
        );
        // An unknown tag, a short field, trailing bytes, bad UTF-8.
        for body in [
            &[99u8][..],
            &[T_OUTPUT, 1, 2][..],
            &[T_PONG, 1, 2, 3, 4, 5, 6, 7, 8, 9][..],
            &[T_PANICKED, 0, 0, 0, 0, 0, 0, 0, 0, 0xff][..],
            &[][..],
        ] {
            assert!(parse_from_worker(body).is_err(), "{body:?}");
        }
        assert!(parse_to_worker(&[T_TASK, 9, 0, 0, 0, b'a']).is_err());
        assert!(parse_to_worker(&[T_HELLO]).is_err());
    }

    #[test]
    fn a_garbage_stream_never_panics() {
        // A cheap deterministic fuzz: every prefix and a few mutations of a valid stream.
        let mut good = Vec::new();
        hello(&mut good, 1, 2);
        output(&mut good, 3, &[4; 20]).unwrap();
        panicked(&mut good, 5, "é", PayloadKind::Static);
        for cut in 0..good.len() {
            let _ = read_all(&good[..cut]);
        }
        let mut x = 0x9e37_79b9u32;
        for _ in 0..2000 {
            let mut m = good.clone();
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let at = x as usize % m.len();
            m[at] = (x >> 8) as u8;
            let _ = read_all(&m);
        }
    }
}
