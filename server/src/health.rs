//! Health probes, unauthenticated: liveness (`/health/live`, `/minio/health/live`) and
//! readiness (`/health/ready`, `/minio/health/ready`, `/minio/health/cluster`). The server only
//! binds its listener after the store opened, so a request reaching this module means ready.
//! Never touches the store or authentication.

use http::{Method, Response, StatusCode};

use crate::s3::response::{self, ResBody};

/// Answers a health probe, or `None` when `path` is not one.
pub fn probe(method: &Method, path: &str) -> Option<Response<ResBody>> {
    if *method != Method::GET && *method != Method::HEAD {
        return None;
    }
    match path {
        "/health/live"
        | "/minio/health/live"
        | "/health/ready"
        | "/minio/health/ready"
        | "/minio/health/cluster" => Some(response::status(StatusCode::OK)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_answer_and_other_paths_do_not() {
        assert_eq!(
            probe(&Method::GET, "/minio/health/live").map(|r| r.status()),
            Some(StatusCode::OK)
        );
        assert!(probe(&Method::HEAD, "/health/ready").is_some());
        assert!(probe(&Method::GET, "/health").is_none());
        assert!(probe(&Method::PUT, "/health/live").is_none());
    }
}
