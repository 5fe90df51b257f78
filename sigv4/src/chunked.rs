//! The aws-chunked body decoder ([`ChunkedDecoder`]) for every `STREAMING-*` payload mode.
//! (stub: real implementation follows)

use crate::AuthError;

/// What the decoder needs to verify chained chunk signatures.
#[derive(Clone)]
pub struct ChunkSigning {
    /// The SigV4 signing key (HMAC chain of secret, date, region, service, "aws4_request").
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
    /// (lower-case name, value) in arrival order; `x-amz-trailer-signature` is not included.
    pub fields: Vec<(String, String)>,
}

impl Trailers {
    /// The first `x-amz-checksum-*` trailer: (name, base64 value).
    pub fn checksum(&self) -> Option<(&str, &str)> {
        self.fields
            .iter()
            .find(|(n, _)| n.starts_with("x-amz-checksum-"))
            .map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// Push decoder for aws-chunked bodies.
#[derive(Debug)]
pub struct ChunkedDecoder {
    signing: Option<ChunkSigning>,
    decoded_length: Option<u64>,
    trailer: bool,
}

impl ChunkedDecoder {
    /// A decoder for `STREAMING-UNSIGNED-PAYLOAD-TRAILER` (or unsigned chunked without trailer).
    pub fn unsigned(decoded_length: Option<u64>, trailer: bool) -> Self {
        ChunkedDecoder {
            signing: None,
            decoded_length,
            trailer,
        }
    }

    /// A decoder for `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`.
    pub fn signed(signing: ChunkSigning, decoded_length: Option<u64>, trailer: bool) -> Self {
        ChunkedDecoder {
            signing: Some(signing),
            decoded_length,
            trailer,
        }
    }

    /// Feeds the next raw body bytes; appends verified decoded payload bytes to `out`.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), AuthError> {
        let _ = (input, out, &self.signing, self.decoded_length, self.trailer);
        Err(AuthError::InvalidChunk("not implemented yet".into()))
    }

    /// Ends the body; errors if it was truncated, lied about its length or had a bad trailer.
    pub fn finish(self) -> Result<Trailers, AuthError> {
        Err(AuthError::IncompleteBody)
    }
}
