//! Internode RPC: how one node uses another node's drives. A request is HTTP on the node's
//! own S3 port under the reserved prefix `/_tessera/rpc/v1/<drive>/<method>` (`<drive>` is
//! the drive's endpoint, base64url; `<method>` one `Drive` call). The S3 server mounts
//! [`serve`] in front of its router for every path where [`is_rpc_path`] holds; the calling
//! side is [`RpcClient`], used by [`crate::drive::RemoteDrive`].
//!
//! - `auth`: the internode key and the per-request MAC (replay-bounded by date). It
//!   authenticates, it does not encrypt: TLS (mTLS) is the transport protection when enabled.
//! - `wire`: paths, query encoding, upload framing, JSON mirrors, errors on the wire.
//! - `service`: the receiving side, calling the local `Drive`.
//! - `client`: the calling side, with pooling, timeouts, and offline mapping.
//! - `tls`: whom the calling side trusts for `https://` peers (system roots, `CAs/`, own
//!   certificate).
//!
//! Mounting (in the S3 server's service function, before S3 routing and S3 auth):
//! `if rpc::is_rpc_path(req.uri().path()) { return rpc::serve(&rpc_service, req).await }`
//! (map the `Full<Bytes>` body into the server's body type). The listener should accept
//! HTTP/1.1 and, for [`Transport::Http2`], h2c with adaptive windows.
//!
//! This module moves `Drive` calls between processes; it must never decide quorum, interpret
//! object keys, or hold a whole shard in memory for a streamed upload.

pub mod auth;
pub mod client;
pub mod service;
pub mod tls;
pub mod wire;

pub use auth::InternodeKey;
pub use client::{RpcClient, RpcOptions, RpcTimeouts, Transport};
pub use service::{is_rpc_path, serve, RpcResponseBody, RpcService};
