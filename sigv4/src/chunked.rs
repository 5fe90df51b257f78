//! The aws-chunked body decoder ([`ChunkedDecoder`]) for every `STREAMING-*` payload mode:
//! signed chunks chained from the seed signature (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`), the
//! same with a signed trailer (`...-PAYLOAD-TRAILER`), and unsigned chunks with a trailer
//! (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`).
//!
//! It is a push decoder with bounded memory: it holds at most one chunk-header or trailer line
//! (≤ [`MAX_LINE`] bytes), the trailer fields (≤ [`MAX_TRAILER_BYTES`]) and, in signed modes,
//! the data of the one chunk whose signature is not verified yet (≤ [`MAX_SIGNED_CHUNK`]).
//!
//! **Release rule (signed modes):** chunk data is hashed incrementally as it arrives but is
//! only appended to the caller's output once that chunk's signature has verified, so the
//! caller never sees a byte that is not covered by a checked signature. Unsigned-trailer mode
//! releases data immediately (nothing can be checked before the trailer; the caller must
//! verify the trailer checksum and call [`ChunkedDecoder::finish`] before committing).
//!
//! This module never decides HTTP behaviour; after the first error the decoder is poisoned and
//! every later call fails.

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::canonical::{hmac_sha256, EMPTY_SHA256_HEX};
use crate::AuthError;

/// Longest chunk-header or trailer line accepted, CRLF included.
pub const MAX_LINE: usize = 4096;
/// Largest chunk accepted in signed modes (the data is held until its signature verifies).
/// SDKs use 64 KiB (most) up to 8 MiB.
pub const MAX_SIGNED_CHUNK: u64 = 16 * 1024 * 1024;
/// Upper bound on all trailer lines together.
pub const MAX_TRAILER_BYTES: usize = 16 * 1024;
/// Upper bound on the number of trailer fields.
pub const MAX_TRAILER_FIELDS: usize = 32;

/// What the decoder needs to verify chained chunk signatures.
#[derive(Clone)]
pub struct ChunkSigning {
    /// The SigV4 signing key (HMAC chain of secret, date, region, service, `aws4_request`).
    pub signing_key: [u8; 32],
    /// The request timestamp, `YYYYMMDDTHHMMSSZ`.
    pub amz_date: String,
    /// The credential scope, `YYYYMMDD/region/service/aws4_request`.
    pub scope: String,
    /// Hex signature of the request (the "seed" the first chunk chains from).
    pub seed_signature: String,
}

impl std::fmt::Debug for ChunkSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkSigning")
            .field("amz_date", &self.amz_date)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Trailing header fields of an aws-chunked body (`x-amz-checksum-*` and friends).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trailers {
    /// (lower-case name, trimmed value) in arrival order; `x-amz-trailer-signature` is not
    /// included (it has been verified already).
    pub fields: Vec<(String, String)>,
}

impl Trailers {
    /// The first `x-amz-checksum-*` trailer: (name, base64 value), e.g.
    /// `("x-amz-checksum-crc32c", "sOO8/Q==")`. The decoder has checked that the value is
    /// base64 of the right length for the algorithm; the caller compares it with the digest of
    /// the decoded bytes.
    pub fn checksum(&self) -> Option<(&str, &str)> {
        self.fields
            .iter()
            .find(|(n, _)| n.starts_with("x-amz-checksum-"))
            .map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a `size[;ext]\r\n` line into `line`.
    Header,
    /// Reading chunk data.
    Data { remaining: u64 },
    /// Expecting the CRLF after chunk data; `seen_cr` once the CR has arrived.
    DataEnd { seen_cr: bool },
    /// After the zero-size chunk: reading trailer lines until an empty line.
    Trailer,
    /// The body is complete; nothing more may arrive.
    Done,
    /// An error happened; the decoder refuses everything.
    Failed,
}

struct Signer {
    key: [u8; 32],
    amz_date: String,
    scope: String,
    prev_hex: String,
}

/// Push decoder for aws-chunked bodies: bounded memory, verifies chained chunk signatures
/// when signed, enforces `x-amz-decoded-content-length`, parses trailers.
///
/// Feed the raw body in arbitrary pieces to [`ChunkedDecoder::decode`]; call
/// [`ChunkedDecoder::finish`] at the end of the body. Nothing decoded counts as a valid upload
/// until `finish` returned `Ok`.
pub struct ChunkedDecoder {
    signer: Option<Signer>,
    decoded_length: Option<u64>,
    trailer_mode: bool,
    expected_trailer: Option<String>,
    state: State,
    line: Vec<u8>,
    hasher: Sha256,
    pending: Vec<u8>,
    chunk_signature: [u8; 32],
    decoded_total: u64,
    trailers: Vec<(String, String)>,
    trailer_bytes: usize,
    trailer_signature: Option<[u8; 32]>,
}

impl std::fmt::Debug for ChunkedDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkedDecoder")
            .field("signed", &self.signer.is_some())
            .field("trailer", &self.trailer_mode)
            .field("decoded_length", &self.decoded_length)
            .field("decoded_total", &self.decoded_total)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

fn invalid(msg: &str) -> AuthError {
    AuthError::InvalidChunk(msg.to_string())
}

/// Expected decoded digest length of a checksum trailer, if the name is a known algorithm.
fn checksum_len(name: &str) -> Option<usize> {
    match name {
        "x-amz-checksum-crc32" | "x-amz-checksum-crc32c" => Some(4),
        "x-amz-checksum-crc64nvme" => Some(8),
        "x-amz-checksum-sha1" => Some(20),
        "x-amz-checksum-sha256" => Some(32),
        _ => None,
    }
}

impl ChunkedDecoder {
    fn new(signer: Option<Signer>, decoded_length: Option<u64>, trailer_mode: bool) -> Self {
        ChunkedDecoder {
            signer,
            decoded_length,
            trailer_mode,
            expected_trailer: None,
            state: State::Header,
            line: Vec::new(),
            hasher: Sha256::new(),
            pending: Vec::new(),
            chunk_signature: [0; 32],
            decoded_total: 0,
            trailers: Vec::new(),
            trailer_bytes: 0,
            trailer_signature: None,
        }
    }

    /// A decoder for unsigned chunks (`STREAMING-UNSIGNED-PAYLOAD-TRAILER` when `trailer`).
    /// `decoded_length` is `x-amz-decoded-content-length` when the client sent it.
    pub fn unsigned(decoded_length: Option<u64>, trailer: bool) -> Self {
        Self::new(None, decoded_length, trailer)
    }

    /// A decoder for `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` (`trailer == false`) or
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER` (`trailer == true`, signed trailer).
    pub fn signed(signing: ChunkSigning, decoded_length: Option<u64>, trailer: bool) -> Self {
        let signer = Signer {
            key: signing.signing_key,
            amz_date: signing.amz_date,
            scope: signing.scope,
            prev_hex: signing.seed_signature.to_ascii_lowercase(),
        };
        Self::new(Some(signer), decoded_length, trailer)
    }

    /// Requires a trailer field of this name (the request's `x-amz-trailer` header).
    pub fn expect_trailer(mut self, name: &str) -> Self {
        self.expected_trailer = Some(name.trim().to_ascii_lowercase());
        self
    }

    /// Total decoded payload bytes seen so far (released or pending).
    pub fn decoded_so_far(&self) -> u64 {
        self.decoded_total
    }

    /// Feeds the next raw body bytes; appends decoded payload bytes to `out`. In signed modes
    /// only bytes of chunks whose signature verified are appended. On error the decoder is
    /// poisoned and the whole upload must be discarded.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), AuthError> {
        let result = self.decode_inner(input, out);
        if result.is_err() {
            self.state = State::Failed;
            self.pending = Vec::new();
        }
        result
    }

    fn decode_inner(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), AuthError> {
        while !input.is_empty() {
            match self.state {
                State::Failed => return Err(invalid("decoder already failed")),
                State::Done => return Err(invalid("data after the end of the aws-chunked body")),
                State::Header | State::Trailer => {
                    let (taken, complete) = self.take_line(input)?;
                    input = &input[taken..];
                    if complete {
                        let line = std::mem::take(&mut self.line);
                        let body = &line[..line.len() - 2];
                        if self.state == State::Header {
                            self.on_chunk_header(body, out)?;
                        } else {
                            self.on_trailer_line(body)?;
                        }
                        self.line = line;
                        self.line.clear();
                    }
                }
                State::Data { remaining } => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    let (data, rest) = input.split_at(n);
                    if self.signer.is_some() {
                        self.hasher.update(data);
                        self.pending.extend_from_slice(data);
                    } else {
                        out.extend_from_slice(data);
                    }
                    input = rest;
                    let remaining = remaining - n as u64;
                    self.state = if remaining == 0 {
                        State::DataEnd { seen_cr: false }
                    } else {
                        State::Data { remaining }
                    };
                }
                State::DataEnd { seen_cr } => {
                    let b = input[0];
                    input = &input[1..];
                    match (seen_cr, b) {
                        (false, b'\r') => self.state = State::DataEnd { seen_cr: true },
                        (true, b'\n') => {
                            self.verify_chunk()?;
                            if out.is_empty() {
                                std::mem::swap(out, &mut self.pending);
                            } else {
                                out.append(&mut self.pending);
                            }
                            self.state = State::Header;
                        }
                        _ => return Err(invalid("chunk data not followed by CRLF")),
                    }
                }
            }
        }
        Ok(())
    }

    /// Moves bytes into `self.line` up to and including the next LF. Returns (consumed,
    /// line complete). A complete line always ends with CRLF.
    fn take_line(&mut self, input: &[u8]) -> Result<(usize, bool), AuthError> {
        let (take, complete) = match input.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (input.len(), false),
        };
        if self.line.len() + take > MAX_LINE {
            return Err(invalid("chunk header or trailer line too long"));
        }
        if self.state == State::Trailer {
            self.trailer_bytes += take;
            if self.trailer_bytes > MAX_TRAILER_BYTES {
                return Err(invalid("trailer too large"));
            }
        }
        self.line.extend_from_slice(&input[..take]);
        if complete && !self.line.ends_with(b"\r\n") {
            return Err(invalid("line not terminated by CRLF"));
        }
        Ok((take, complete))
    }

    fn on_chunk_header(&mut self, line: &[u8], out: &mut Vec<u8>) -> Result<(), AuthError> {
        let line = std::str::from_utf8(line).map_err(|_| invalid("chunk header is not ASCII"))?;
        let mut parts = line.split(';');
        let size_hex = parts.next().unwrap_or("").trim();
        if size_hex.is_empty()
            || size_hex.len() > 16
            || !size_hex.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(invalid("bad chunk size"));
        }
        let size = u64::from_str_radix(size_hex, 16).map_err(|_| invalid("bad chunk size"))?;
        let mut signature = None;
        for ext in parts {
            if let Some(v) = ext.trim().strip_prefix("chunk-signature=") {
                if signature.is_some() {
                    return Err(invalid("repeated chunk-signature"));
                }
                signature = Some(v);
            }
        }
        if self.signer.is_some() {
            let sig = signature.ok_or_else(|| invalid("missing chunk-signature"))?;
            self.chunk_signature = crate::authz::parse_signature_hex(sig)
                .ok_or_else(|| invalid("chunk-signature must be 64 hex digits"))?;
            if size > MAX_SIGNED_CHUNK {
                return Err(invalid("signed chunk larger than 16 MiB"));
            }
        }
        let total = self
            .decoded_total
            .checked_add(size)
            .ok_or_else(|| invalid("chunk size overflow"))?;
        if let Some(expected) = self.decoded_length {
            if total > expected {
                return Err(invalid("chunks exceed x-amz-decoded-content-length"));
            }
        }
        self.decoded_total = total;
        if size == 0 {
            if let Some(expected) = self.decoded_length {
                if total != expected {
                    return Err(AuthError::IncompleteBody);
                }
            }
            self.verify_chunk()?;
            let _ = out;
            self.state = State::Trailer;
        } else {
            self.state = State::Data { remaining: size };
        }
        Ok(())
    }

    /// Checks the signature of the chunk just completed (its data hashed in `self.hasher`).
    fn verify_chunk(&mut self) -> Result<(), AuthError> {
        let hash = std::mem::take(&mut self.hasher).finalize();
        let Some(signer) = self.signer.as_mut() else {
            return Ok(());
        };
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{}\n{}",
            signer.amz_date,
            signer.scope,
            signer.prev_hex,
            EMPTY_SHA256_HEX,
            hex::encode(hash)
        );
        let expected = hmac_sha256(&signer.key, sts.as_bytes());
        if !bool::from(expected.ct_eq(&self.chunk_signature)) {
            return Err(AuthError::ChunkSignatureDoesNotMatch);
        }
        signer.prev_hex = hex::encode(expected);
        Ok(())
    }

    fn on_trailer_line(&mut self, line: &[u8]) -> Result<(), AuthError> {
        if line.is_empty() {
            return self.end_of_trailers();
        }
        if !self.trailer_mode {
            return Err(invalid("trailer sent without a trailer payload mode"));
        }
        let line = std::str::from_utf8(line).map_err(|_| invalid("trailer is not UTF-8"))?;
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid("trailer line without ':'"))?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        if name.is_empty() {
            return Err(invalid("empty trailer name"));
        }
        if name == "x-amz-trailer-signature" {
            if self.trailer_signature.is_some() {
                return Err(invalid("repeated x-amz-trailer-signature"));
            }
            self.trailer_signature = Some(
                crate::authz::parse_signature_hex(value)
                    .ok_or_else(|| invalid("x-amz-trailer-signature must be 64 hex digits"))?,
            );
            return Ok(());
        }
        if self.trailer_signature.is_some() {
            return Err(invalid("trailer field after x-amz-trailer-signature"));
        }
        if self.trailers.len() >= MAX_TRAILER_FIELDS {
            return Err(invalid("too many trailer fields"));
        }
        if let Some(len) = checksum_len(&name) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value)
                .map_err(|_| AuthError::InvalidDigest)?;
            if decoded.len() != len {
                return Err(AuthError::InvalidDigest);
            }
        }
        self.trailers.push((name, value.to_string()));
        Ok(())
    }

    /// The trailer section ended: check the trailer signature and the declared trailer.
    fn end_of_trailers(&mut self) -> Result<(), AuthError> {
        if let Some(expected) = &self.expected_trailer {
            if !self.trailers.iter().any(|(n, _)| n == expected) {
                return Err(invalid("declared x-amz-trailer is missing from the body"));
            }
        }
        if self.trailer_mode {
            if let Some(signer) = &self.signer {
                let sig = self
                    .trailer_signature
                    .ok_or_else(|| invalid("missing x-amz-trailer-signature"))?;
                let mut sorted: Vec<&(String, String)> = self.trailers.iter().collect();
                sorted.sort();
                let mut canonical = String::new();
                for (n, v) in sorted {
                    canonical.push_str(n);
                    canonical.push(':');
                    canonical.push_str(v);
                    canonical.push('\n');
                }
                let sts = format!(
                    "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
                    signer.amz_date,
                    signer.scope,
                    signer.prev_hex,
                    hex::encode(Sha256::digest(canonical.as_bytes()))
                );
                let expected = hmac_sha256(&signer.key, sts.as_bytes());
                if !bool::from(expected.ct_eq(&sig)) {
                    return Err(AuthError::ChunkSignatureDoesNotMatch);
                }
            }
        }
        self.state = State::Done;
        Ok(())
    }

    /// Ends the body. Errors when it was truncated (`IncompleteBody`), lied about its length,
    /// or carried a bad or missing trailer (signature). On `Ok`, every byte appended to `out`
    /// by `decode` is authentic (signed modes) and complete; the caller still verifies the
    /// trailer checksum (if any) against the decoded bytes.
    pub fn finish(mut self) -> Result<Trailers, AuthError> {
        match self.state {
            State::Done => {}
            // Some clients end the body right after the last trailer line, without the final
            // empty line. Accept that only at a line boundary, with something in the trailer.
            State::Trailer
                if self.line.is_empty()
                    && self.trailer_mode
                    && (!self.trailers.is_empty() || self.trailer_signature.is_some()) =>
            {
                self.end_of_trailers()?;
            }
            State::Failed => return Err(invalid("decoder already failed")),
            _ => return Err(AuthError::IncompleteBody),
        }
        Ok(Trailers {
            fields: self.trailers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(
        mut d: ChunkedDecoder,
        body: &[u8],
        step: usize,
    ) -> Result<(Vec<u8>, Trailers), AuthError> {
        let mut out = Vec::new();
        for piece in body.chunks(step.max(1)) {
            d.decode(piece, &mut out)?;
        }
        let t = d.finish()?;
        Ok((out, t))
    }

    #[test]
    fn unsigned_trailer_body_decodes_in_any_split() {
        let body = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
        for step in 1..body.len() {
            let d = ChunkedDecoder::unsigned(Some(11), true).expect_trailer("x-amz-checksum-crc32");
            let (out, t) = decode_all(d, body, step).unwrap();
            assert_eq!(out, b"hello world");
            assert_eq!(t.checksum(), Some(("x-amz-checksum-crc32", "DUoRhQ==")));
        }
    }

    #[test]
    fn lying_lengths_and_truncation_fail() {
        let body = b"5\r\nhello\r\n0\r\n\r\n";
        assert!(decode_all(ChunkedDecoder::unsigned(Some(4), false), body, 3).is_err());
        assert!(decode_all(ChunkedDecoder::unsigned(Some(6), false), body, 3).is_err());
        assert!(decode_all(ChunkedDecoder::unsigned(Some(5), false), body, 3).is_ok());
        for cut in 0..body.len() {
            assert!(
                decode_all(ChunkedDecoder::unsigned(Some(5), false), &body[..cut], 2).is_err(),
                "{cut}"
            );
        }
        let long = vec![b'1'; MAX_LINE + 1];
        assert!(decode_all(ChunkedDecoder::unsigned(None, false), &long, 100).is_err());
        assert_eq!(
            decode_all(
                ChunkedDecoder::unsigned(None, true),
                b"0\r\nx-amz-checksum-crc32:abc\r\n\r\n",
                7
            ),
            Err(AuthError::InvalidDigest)
        );
    }
}
