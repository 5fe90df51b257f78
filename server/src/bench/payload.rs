//! Object contents for the load generator: one pseudo-random payload generated once and shared
//! by every request (reference-counted, never copied per request), a 16-byte per-object prefix
//! that makes every object's bytes distinct, the request body that streams both from memory,
//! and the check of a GET response (length and CRC-32 of the bytes). This module never touches
//! the network.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// Length of the per-object prefix (object id and size, little endian).
pub const PREFIX_LEN: usize = 16;

/// The shared bytes every object of one size is cut from.
#[derive(Debug, Clone)]
pub struct Payload {
    size: usize,
    /// The object's bytes after its prefix (`size - prefix_len` bytes).
    tail: Bytes,
    /// CRC-32 state of `tail`, combined with each prefix's to predict an object's checksum.
    tail_crc: crc32fast::Hasher,
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

impl Payload {
    /// Generates the shared bytes for objects of `size` bytes (xorshift, seeded by `seed`).
    pub fn generate(size: usize, seed: u64) -> Self {
        let tail_len = size.saturating_sub(PREFIX_LEN);
        let mut tail = Vec::with_capacity(tail_len);
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        while tail.len() < tail_len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = (tail_len - tail.len()).min(8);
            tail.extend_from_slice(&x.to_le_bytes()[..n]);
        }
        let mut tail_crc = crc32fast::Hasher::new();
        tail_crc.update(&tail);
        Payload {
            size,
            tail: Bytes::from(tail),
            tail_crc,
        }
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

    /// The request body of object `id`: its prefix, then the shared tail (no copy).
    pub fn body(&self, id: u64) -> ObjectBody {
        ObjectBody {
            parts: [Some(self.prefix(id)), Some(self.tail.clone())],
            remaining: self.size as u64,
        }
    }

    /// Object `id` as one contiguous buffer (copies: for baselines, not per request).
    pub fn object_bytes(&self, id: u64) -> Bytes {
        let mut v = Vec::with_capacity(self.size);
        v.extend_from_slice(&self.prefix(id));
        v.extend_from_slice(&self.tail);
        Bytes::from(v)
    }

    /// The CRC-32 object `id` must have.
    pub fn expected_crc(&self, id: u64) -> u32 {
        let mut h = crc32fast::Hasher::new();
        h.update(&self.prefix(id));
        h.combine(&self.tail_crc);
        h.finalize()
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
            expected_crc: self.expected_crc(id),
            len: 0,
            crc: crc32fast::Hasher::new(),
        }
    }
}

/// Length and CRC-32 of a response body as it streams in.
#[derive(Debug, Clone)]
pub struct BodyCheck {
    expected_len: u64,
    expected_crc: u32,
    len: u64,
    crc: crc32fast::Hasher,
}

impl BodyCheck {
    /// Feeds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        self.crc.update(bytes);
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
        let got = self.crc.finalize();
        if got != self.expected_crc {
            return Err(VerifyError::Checksum {
                got,
                expected: self.expected_crc,
            });
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
}
