//! Request and response bodies as streams of `Bytes`. A request body is an [`ObjectBody`]:
//! a stream that may end with trailing checksums (aws-chunked trailers). This module only
//! defines the shapes; it never buffers or interprets bytes.

use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;

use crate::checksum::Checksum;

/// A response body: the bytes of a GET, in order. An `Err` item ends it.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A request body. The stream yielding `Err` at any point (including instead of a clean end)
/// aborts the write: nothing is committed, staged data is removed.
pub trait ObjectBody: Stream<Item = std::io::Result<Bytes>> + Send + Unpin {
    /// Called once after the stream ended cleanly: checksums that arrived after the data
    /// (aws-chunked trailers). Default: none.
    fn trailing_checksums(&mut self) -> Vec<Checksum> {
        Vec::new()
    }
}

impl ObjectBody for ByteStream {}

/// A body made of in-memory chunks (tests, small internal writes).
#[derive(Debug)]
pub struct BytesBody {
    chunks: std::collections::VecDeque<Bytes>,
    trailers: Vec<Checksum>,
}

impl BytesBody {
    pub fn new(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        let mut chunks = std::collections::VecDeque::new();
        if !data.is_empty() {
            chunks.push_back(data);
        }
        BytesBody {
            chunks,
            trailers: Vec::new(),
        }
    }

    /// The data split into chunks of `chunk` bytes (exercises buffering).
    pub fn chunked(data: impl Into<Bytes>, chunk: usize) -> Self {
        let mut data: Bytes = data.into();
        let mut chunks = std::collections::VecDeque::new();
        while !data.is_empty() {
            chunks.push_back(data.split_to(chunk.max(1).min(data.len())));
        }
        BytesBody {
            chunks,
            trailers: Vec::new(),
        }
    }

    /// Adds checksums to report as trailers after the data.
    pub fn with_trailers(mut self, trailers: Vec<Checksum>) -> Self {
        self.trailers = trailers;
        self
    }
}

impl Stream for BytesBody {
    type Item = std::io::Result<Bytes>;
    fn poll_next(
        mut self: Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.chunks.pop_front().map(Ok))
    }
}

impl ObjectBody for BytesBody {
    fn trailing_checksums(&mut self) -> Vec<Checksum> {
        std::mem::take(&mut self.trailers)
    }
}

/// Collects a [`ByteStream`] into memory (tests and small internal reads).
pub async fn collect(mut body: ByteStream) -> std::io::Result<Vec<u8>> {
    use futures::StreamExt as _;
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}
