//! sigv4: decides whether an S3 request is authentic (AWS Signature Version 4 header and query
//! auth, every aws-chunked payload mode, SigV2 presigned URLs). Pure and synchronous: no HTTP
//! types, no tokio, no I/O, no global state.

mod chunked;
mod credentials;
mod error;
mod payload;
mod request;
mod verifier;

pub use chunked::{ChunkSigning, ChunkedDecoder, Trailers};
pub use credentials::{Credential, CredentialsProvider, StaticCredentials};
pub use error::AuthError;
pub use payload::PayloadHasher;
pub use request::RequestParts;
pub use verifier::{Authenticated, PayloadCheck, Verifier};
