//! Health probes, unauthenticated: liveness (`/health/live`, `/minio/health/live`: the
//! process answers), readiness (`/health/ready`, `/minio/health/ready`: the store is open
//! on this node) and cluster health (`/health/cluster`, `/minio/health/cluster`: every
//! erasure set has write quorum of online drives right now). 200 or 503, no body. Never
//! authenticates and never changes the store.

use cluster::Store;
use http::{Method, Response, StatusCode};

use crate::s3::response::{self, ResBody};

/// Which probe a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// The process is up.
    Live,
    /// The store is open on this node.
    Ready,
    /// Every set has write quorum.
    Cluster,
}

/// The probe `path` asks for, or `None` when it is not one (or the method is not GET/HEAD).
pub fn probe_of(method: &Method, path: &str) -> Option<Probe> {
    if *method != Method::GET && *method != Method::HEAD {
        return None;
    }
    match path {
        "/health/live" | "/minio/health/live" => Some(Probe::Live),
        "/health/ready" | "/minio/health/ready" => Some(Probe::Ready),
        "/health/cluster" | "/minio/health/cluster" => Some(Probe::Cluster),
        _ => None,
    }
}

/// `true` when every erasure set of `store` has at least its write quorum of drives online.
pub async fn write_quorum_everywhere(store: &Store) -> bool {
    let layout = store.layout();
    let offline = store.offline_drives().await;
    let quorum = cluster::set::write_quorum(layout.data_shards, layout.parity_shards);
    layout
        .drives
        .chunks(layout.drives_per_set.max(1))
        .all(|set| set.iter().filter(|d| !offline.contains(d)).count() >= quorum)
}

/// Answers probe `p`; `store` is `None` while the store is not open.
pub async fn answer(p: Probe, store: Option<&Store>) -> Response<ResBody> {
    let ok = match (p, store) {
        (Probe::Live, _) => true,
        (_, None) => false,
        (Probe::Ready, Some(_)) => true,
        (Probe::Cluster, Some(s)) => write_quorum_everywhere(s).await,
    };
    response::status(if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_recognised_and_other_paths_are_not() {
        assert_eq!(
            probe_of(&Method::GET, "/minio/health/live"),
            Some(Probe::Live)
        );
        assert_eq!(probe_of(&Method::HEAD, "/health/ready"), Some(Probe::Ready));
        assert_eq!(
            probe_of(&Method::GET, "/minio/health/cluster"),
            Some(Probe::Cluster)
        );
        assert_eq!(probe_of(&Method::GET, "/health"), None);
        assert_eq!(probe_of(&Method::PUT, "/health/live"), None);
    }

    #[tokio::test]
    async fn not_ready_until_a_store_is_given() {
        assert_eq!(answer(Probe::Live, None).await.status(), StatusCode::OK);
        assert_eq!(
            answer(Probe::Ready, None).await.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            answer(Probe::Cluster, None).await.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
