//! Object contents for the load generator: one pseudo-random payload generated once and shared
//! by every request (reference-counted, never copied per request) with a 16-byte per-object
//! prefix that makes every object's bytes distinct — or, with `--random`, fresh bytes per
//! object whose CRC-32 is remembered for the GET check — the request bodies that stream an
//! object (or a byte range of it, for multipart parts) from memory, and the check of a GET
//! response (length and CRC-32 of the bytes). This module never touches the network.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// Length of the per-object prefix (object id and size, little endian).
pub const PREFIX_LEN: usize = 16;

/// The bytes every object of one size is cut from.
#[derive(Debug, Clone)]
pub struct Payload {
    size: usize,
    /// The object's bytes after its prefix (`size - prefix_len` bytes); empty when random.
    tail: Bytes,
    /// CRC-32 state of `tail`, combined with each prefix's to predict an object's checksum.
    tail_crc: crc32fast::Hasher,
    /// Per-object random bytes instead of the shared tail.
    random: Option<Arc<RandomObjects>>,
}

/// The seed and the remembered checksums of per-object random payloads.
#[derive(Debug)]
struct RandomObjects {
    seed: u64,
    crcs: Mutex<HashMap<u64, u32>>,
}

/// Why a GET response does not hold the object that was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The body had the wrong length.
    #[error("body is {got} bytes, expected {expected}")]
    Length {
        /// Bytes received.
        got: u64,
        /// Bytes written.
        expected: u64,
    },
    /// The body had the right length and the wrong content.
    #[error("body checksum {got:08x}, expected {expected:08x}")]
    Checksum {
        /// CRC-32 of the received bytes.
        got: u32,
        /// CRC-32 of the written bytes.
        expected: u32,
    },
}

/// xorshift64 bytes of length `len` from `seed`.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut chunks = out.chunks_exact_mut(8);
    for c in &mut chunks {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.copy_from_slice(&x.to_le_bytes());
    }
    let rest = chunks.into_remainder();
    let n = rest.len();
    rest.copy_from_slice(&x.rotate_left(7).to_le_bytes()[..n]);
    out
}

/// One object's bytes as (at most) two shared buffers.
#[derive(Debug, Clone)]
pub struct ObjectData {
    pieces: [Bytes; 2],
}

impl ObjectData {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        (self.pieces[0].len() + self.pieces[1].len()) as u64
    }

    /// True for an empty object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole object as a request body (no copy).
    pub fn body(&self) -> ObjectBody {
        ObjectBody {
            parts: [Some(self.pieces[0].clone()), Some(self.pieces[1].clone())],
            remaining: self.len(),
        }
    }

    /// Bytes `start..end` of the object as a request body (no copy); clamped to the object.
    pub fn range(&self, start: u64, end: u64) -> ObjectBody {
        let mut parts = [None, None];
        let mut offset = 0u64;
        let mut remaining = 0;
        for (slot, piece) in parts.iter_mut().zip(&self.pieces) {
            let (p0, p1) = (offset, offset + piece.len() as u64);
            offset = p1;
            let (s, e) = (start.max(p0), end.min(p1));
            if s < e {
                *slot = Some(piece.slice((s - p0) as usize..(e - p0) as usize));
                remaining += e - s;
            }
        }
        ObjectBody { parts, remaining }
    }
}

impl Payload {
    /// The shared bytes for objects of `size` bytes (xorshift, seeded by `seed`).
    pub fn generate(size: usize, seed: u64) -> Self {
        let tail = pseudo_random(size.saturating_sub(PREFIX_LEN), seed);
        let mut tail_crc = crc32fast::Hasher::new();
        tail_crc.update(&tail);
        Payload {
            size,
            tail: Bytes::from(tail),
            tail_crc,
            random: None,
        }
    }

    /// Fresh pseudo-random bytes for every object of `size` bytes (generated when the object
    /// is first written; its CRC-32 is remembered for the GET check).
    pub fn random(size: usize, seed: u64) -> Self {
        Payload {
            size,
            tail: Bytes::new(),
            tail_crc: crc32fast::Hasher::new(),
            random: Some(Arc::new(RandomObjects {
                seed,
                crcs: Mutex::new(HashMap::new()),
            })),
        }
    }

    /// Object `id`'s bytes (with `--random`, generated now and its checksum remembered).
    pub fn object(&self, id: u64) -> ObjectData {
        match &self.random {
            None => ObjectData {
                pieces: [self.prefix(id), self.tail.clone()],
            },
            Some(r) => {
                let bytes = self.random_bytes(r, id);
                let crc = crc32fast::hash(&bytes);
                if let Ok(mut m) = r.crcs.lock() {
                    m.insert(id, crc);
                }
                ObjectData {
                    pieces: [Bytes::from(bytes), Bytes::new()],
                }
            }
        }
    }

    fn random_bytes(&self, r: &RandomObjects, id: u64) -> Vec<u8> {
        pseudo_random(self.size, r.seed ^ id.wrapping_mul(0xD6E8_FEB8_6659_FD93))
    }

    /// Object size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The prefix of object `id` (truncated when objects are shorter than [`PREFIX_LEN`]).
    pub fn prefix(&self, id: u64) -> Bytes {
        let mut p = [0u8; PREFIX_LEN];
        p[..8].copy_from_slice(&id.to_le_bytes());
        p[8..].copy_from_slice(&(self.size as u64).to_le_bytes());
        Bytes::copy_from_slice(&p[..self.size.min(PREFIX_LEN)])
    }

    /// The request body of object `id` (shared payload: its prefix, then the shared tail, no
    /// copy).
    pub fn body(&self, id: u64) -> ObjectBody {
        self.object(id).body()
    }

    /// Object `id` as one contiguous buffer (copies: for baselines and tests, not per request).
    pub fn object_bytes(&self, id: u64) -> Bytes {
        let o = self.object(id);
        let mut v = Vec::with_capacity(self.size);
        v.extend_from_slice(&o.pieces[0]);
        v.extend_from_slice(&o.pieces[1]);
        Bytes::from(v)
    }

    /// The CRC-32 object `id` must have.
    pub fn expected_crc(&self, id: u64) -> u32 {
        if let Some(r) = &self.random {
            let known = r.crcs.lock().ok().and_then(|m| m.get(&id).copied());
            return known.unwrap_or_else(|| crc32fast::hash(&self.random_bytes(r, id)));
        }
        let mut h = crc32fast::Hasher::new();
        h.update(&self.prefix(id));
        h.combine(&self.tail_crc);
        h.finalize()
    }

    /// A check of object `id` that only compares the length (`--verify=false`).
    pub fn length_checker(&self) -> BodyCheck {
        BodyCheck {
            expected_len: self.size as u64,
            expected_crc: None,
            len: 0,
            crc: None,
        }
    }

    /// Checks received bytes of object `id`, fed as a whole.
    pub fn verify(&self, id: u64, body: &[u8]) -> Result<(), VerifyError> {
        let mut check = self.checker(id);
        check.update(body);
        check.finish()
    }

    /// A streaming check of object `id`'s bytes.
    pub fn checker(&self, id: u64) -> BodyCheck {
        BodyCheck {
            expected_len: self.size as u64,
            expected_crc: Some(self.expected_crc(id)),
            len: 0,
            crc: Some(crc32fast::Hasher::new()),
        }
    }
}

/// Length and CRC-32 of a response body as it streams in.
#[derive(Debug, Clone)]
pub struct BodyCheck {
    expected_len: u64,
    expected_crc: Option<u32>,
    len: u64,
    crc: Option<crc32fast::Hasher>,
}

impl BodyCheck {
    /// Feeds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if let Some(c) = &mut self.crc {
            c.update(bytes);
        }
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Compares with what was written.
    pub fn finish(self) -> Result<(), VerifyError> {
        if self.len != self.expected_len {
            return Err(VerifyError::Length {
                got: self.len,
                expected: self.expected_len,
            });
        }
        if let (Some(crc), Some(expected)) = (self.crc, self.expected_crc) {
            let got = crc.finalize();
            if got != expected {
                return Err(VerifyError::Checksum { got, expected });
            }
        }
        Ok(())
    }
}

/// A PUT body: two in-memory frames with an exact length (so it goes out with
/// `Content-Length`, not chunked).
#[derive(Debug)]
pub struct ObjectBody {
    parts: [Option<Bytes>; 2],
    remaining: u64,
}

impl ObjectBody {
    /// A body of exactly `bytes` (shares the buffer).
    pub fn from_bytes(bytes: Bytes) -> Self {
        ObjectBody {
            remaining: bytes.len() as u64,
            parts: [Some(bytes), None],
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        ObjectBody {
            parts: [None, None],
            remaining: 0,
        }
    }
}

impl http_body::Body for ObjectBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        for i in 0..2 {
            if let Some(b) = self.parts[i].take() {
                if b.is_empty() {
                    continue;
                }
                self.remaining -= b.len() as u64;
                return Poll::Ready(Some(Ok(Frame::data(b))));
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    #[tokio::test]
    async fn body_streams_the_object_and_verifies() {
        for size in [0usize, 5, 16, 17, 4096, 100_003] {
            let p = Payload::generate(size, 7);
            let body = p.body(42);
            assert_eq!(http_body::Body::size_hint(&body).exact(), Some(size as u64));
            let bytes = body.collect().await.expect("infallible").to_bytes();
            assert_eq!(bytes.len(), size);
            assert_eq!(p.verify(42, &bytes), Ok(()));
            if size > 0 {
                let mut bad = bytes.to_vec();
                let last = bad.len() - 1;
                bad[last] ^= 1;
                assert!(matches!(
                    p.verify(42, &bad),
                    Err(VerifyError::Checksum { .. })
                ));
                // Another object's bytes are not this object's.
                assert!(p.verify(43, &bytes).is_err());
            }
            assert_eq!(p.object_bytes(42), bytes);
            if size > 0 {
                assert!(matches!(
                    p.verify(42, &bytes[..size - 1]),
                    Err(VerifyError::Length { .. })
                ));
            }
        }
    }

    #[tokio::test]
    async fn ranges_cover_the_object_and_random_objects_differ() {
        for p in [Payload::generate(100_003, 3), Payload::random(100_003, 3)] {
            let whole = p.object_bytes(5);
            let obj = p.object(5);
            let mut joined = Vec::new();
            for start in (0..100_003u64).step_by(7_000) {
                let body = obj.range(start, start + 7_000);
                let b = body.collect().await.expect("infallible").to_bytes();
                joined.extend_from_slice(&b);
            }
            assert_eq!(joined, whole);
            assert_eq!(p.verify(5, &joined), Ok(()));
            let short = obj
                .range(3, 10)
                .collect()
                .await
                .expect("infallible")
                .to_bytes();
            assert_eq!(&short[..], &whole[3..10]);
        }
        let r = Payload::random(4096, 1);
        let (a, b) = (r.object_bytes(1), r.object_bytes(2));
        assert_ne!(a[16..], b[16..], "random objects share no tail");
        assert_eq!(r.verify(2, &b), Ok(()));
        assert!(r.verify(1, &b).is_err());
        let mut len_only = r.length_checker();
        len_only.update(&a);
        assert_eq!(len_only.finish(), Ok(()));
    }
}
