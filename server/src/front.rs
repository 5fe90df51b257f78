//! The front door of every connection: routes internode RPC paths to the cluster's
//! [`RpcService`] (its own MAC auth, ahead of S3 routing and S3 auth), answers health probes,
//! serves the admin API ([`crate::admin`], root-signed) once the store is open, and hands everything else to the [`S3Service`] once the store is open — before that, S3
//! requests get `503 SlowDown` with an S3 XML error body. It never authenticates S3 requests
//! itself and never touches drives.

use std::sync::{Arc, OnceLock};

use cluster::rpc::{self, RpcService};
use http::{Request, Response};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;

use crate::admin::{self, AdminApi};
use crate::health;
use crate::s3::error::S3Error;
use crate::s3::response::{self, ResBody};
use crate::s3::{request_id, S3Service};

/// The headers every S3 response carries: request ids and `Server`.
fn stamp(mut resp: Response<ResBody>, id: &str) -> Response<ResBody> {
    let h = resp.headers_mut();
    if let Ok(v) = http::HeaderValue::from_str(id) {
        h.insert("x-amz-request-id", v.clone());
        h.insert("x-amz-id-2", v);
    }
    h.insert(
        http::header::SERVER,
        http::HeaderValue::from_static("Tessera"),
    );
    resp
}

/// What a connection serves: RPC (multi-node only), health, and S3 once the store opened.
#[derive(Debug, Default)]
pub struct Front {
    rpc: Option<Arc<RpcService>>,
    s3: OnceLock<Arc<S3Service>>,
    admin: OnceLock<Arc<AdminApi>>,
    failed: OnceLock<String>,
}

impl Front {
    /// A front serving `s3` right away (single node: the store opened before binding).
    pub fn ready(s3: Arc<S3Service>) -> Front {
        let front = Front::default();
        let _ = front.s3.set(s3);
        front
    }

    /// A front that serves `rpc` now and S3 once [`Front::open`] is called.
    pub fn starting(rpc: RpcService) -> Front {
        Front {
            rpc: Some(Arc::new(rpc)),
            ..Front::default()
        }
    }

    /// The store opened: S3 requests are served from now on.
    pub fn open(&self, s3: Arc<S3Service>) {
        let _ = self.s3.set(s3);
    }

    /// The admin API is served from now on (set with [`Front::open`] / [`Front::ready`]).
    pub fn open_admin(&self, api: Arc<AdminApi>) {
        let _ = self.admin.set(api);
    }

    /// The store could not open: S3 requests keep getting 503, with this reason logged.
    pub fn fail(&self, reason: String) {
        let _ = self.failed.set(reason);
    }

    /// The S3 front end, once the store is open.
    pub fn s3(&self) -> Option<&Arc<S3Service>> {
        self.s3.get()
    }

    /// Serves one request; never fails.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<ResBody> {
        let path = req.uri().path();
        if rpc::is_rpc_path(path) {
            if let Some(rpc) = &self.rpc {
                return rpc::serve(rpc, req)
                    .await
                    .map(|b| b.map_err(|never| match never {}).boxed_unsync());
            }
        }
        if admin::is_admin_path(path) {
            if let Some(api) = self.admin.get() {
                let id = request_id();
                return stamp(api.handle(req, &id).await, &id);
            }
        }
        let s3 = self.s3.get();
        if let Some(p) = health::probe_of(req.method(), path) {
            return stamp(health::answer(p, s3.map(|s| &s.store)).await, &request_id());
        }
        match s3 {
            Some(s3) => s3.clone().handle(req).await,
            None => {
                let head = req.method() == http::Method::HEAD;
                let reason = match self.failed.get() {
                    Some(r) => format!("This node could not open the store: {r}"),
                    None => "This node is still starting; the store is not open yet.".to_owned(),
                };
                let err = S3Error::new("SlowDown", http::StatusCode::SERVICE_UNAVAILABLE, reason);
                let id = request_id();
                stamp(response::error(&err, req.uri().path(), &id, head), &id)
            }
        }
    }
}
