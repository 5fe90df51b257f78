//! Integration tests of the S3 API: the real server (`tessera_server::start`) on a real socket
//! (127.0.0.1, port 0) over temporary drives, driven by the aws-sdk-s3 crate and by raw HTTP
//! for what an SDK will not send (bad signatures, malformed XML, aws-chunked modes, oversized
//! headers). One test binary, several modules, to keep link time down.

mod common;
mod sign;

mod admin;
mod admin_cli;
mod bench;
mod binary;
mod buckets;
mod copy;
mod integrity;
mod list;
mod multinode;
mod multipart;
mod objects;
mod raw_auth;
mod raw_input;
mod tls;
