//! The admin API under `/_tessera/admin/v1/` (routed by [`crate::front`] ahead of S3),
//! JSON in and out, SigV4-signed with the ROOT credentials only (anything else: `403
//! AccessDenied` with an S3 XML error body):
//! - `GET  /_tessera/admin/v1/heal`      → this node's healing status ([`heal_json`]);
//! - `POST /_tessera/admin/v1/heal/scan` → `202`, starts a full scanner cycle now;
//! - `GET  /_tessera/admin/v1/cluster`   → every node of the deployment and its liveness as
//!   this node sees it ([`cluster_json`]).
//!
//! Also the client side of `tessera admin heal status|scan` ([`run_cli`]), over `http://` or
//! `https://` (trust by [`crate::bench::tls`]), for one node or, with `--cluster`, every node
//! ([`cluster_status`]). This module only reads the engine's status and pokes the scanner; it
//! never heals or touches drives itself.

use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Subcommand};
use cluster::heal::status::NodeView;
use cluster::{HealStatus, Store};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use sigv4::{StaticCredentials, Verifier};

use crate::bench::tls::{ClientTlsError, ClientTrust};
use crate::s3::error::S3Error;
use crate::s3::response::{self, ResBody};

/// Every admin path starts with this.
pub const PREFIX: &str = "/_tessera/admin/";
/// The heal status path.
pub const HEAL_PATH: &str = "/_tessera/admin/v1/heal";
/// The path that starts a scanner cycle.
pub const SCAN_PATH: &str = "/_tessera/admin/v1/heal/scan";
/// The path of the node list.
pub const CLUSTER_PATH: &str = "/_tessera/admin/v1/cluster";

/// Whether `path` belongs to the admin API.
pub fn is_admin_path(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// The admin API of one node: its store and a verifier that knows only the root key.
#[derive(Debug)]
pub struct AdminApi {
    store: Store,
    verifier: Verifier,
    root_access_key: String,
}

fn json_response(status: StatusCode, v: &Value) -> Response<ResBody> {
    let body = serde_json::to_vec_pretty(v).unwrap_or_default();
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(response::full(Bytes::from(body)))
        .unwrap_or_else(|_| response::status(StatusCode::INTERNAL_SERVER_ERROR))
}

/// RFC 3339 (UTC) of a Unix time in seconds.
fn rfc3339(unix: f64) -> Value {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos((unix * 1e9) as i128)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
    t.map(Value::String).unwrap_or(Value::Null)
}

/// The JSON of `GET /_tessera/admin/v1/heal` (field names are the admin API contract).
pub fn heal_json(s: &HealStatus) -> Value {
    let sc = &s.scanner;
    json!({
        "scanner": {
            "running": sc.running,
            "cycles": sc.cycles,
            "objects_scanned": sc.progress.objects_scanned,
            "objects_healed": sc.progress.objects_healed,
            "objects_failed": sc.progress.objects_failed,
            "bytes_scanned": sc.progress.bytes_scanned,
            "bytes_healed": sc.progress.bytes_healed,
            "cycle_started": sc.cycle_started_unix.map(rfc3339),
            "last_cycle_seconds": sc.last_cycle_seconds,
            "last_cycle_ended": sc.last_cycle_ended_unix.map(rfc3339),
            "orphans_removed": sc.orphans_removed,
            "sets_scanned_here": sc.sets_scanned_here,
            "rate": sc.rate,
            "interval_seconds": sc.interval_seconds,
        },
        "queue": { "pending": s.queue_pending },
        "drives": s.drives.iter().map(|d| json!({
            "endpoint": d.endpoint,
            "state": d.state,
            "slot": d.slot,
            "local": d.local,
        })).collect::<Vec<_>>(),
        "bulk": s.bulk.iter().map(|b| json!({
            "drive": b.drive,
            "set": b.set,
            "state": b.state,
            "objects_scanned": b.progress.objects_scanned,
            "objects_healed": b.progress.objects_healed,
            "objects_failed": b.progress.objects_failed,
            "bytes_scanned": b.progress.bytes_scanned,
            "bytes_healed": b.progress.bytes_healed,
            "total_objects": b.total_objects,
            "started": rfc3339(b.started_unix),
            "elapsed_seconds": b.elapsed_seconds,
            "eta_seconds": b.eta_seconds,
        })).collect::<Vec<_>>(),
        "redundancy_ok": s.redundancy_ok,
    })
}

/// The JSON of `GET /_tessera/admin/v1/cluster`: `{"nodes": [{"endpoint", "local", "state",
/// "offline_seconds", "drives"}]}` (`endpoint` is null for a single node on plain paths).
pub fn cluster_json(nodes: &[NodeView]) -> Value {
    json!({
        "nodes": nodes.iter().map(|n| json!({
            "endpoint": n.endpoint,
            "local": n.local,
            "state": n.state,
            "offline_seconds": n.offline_seconds,
            "drives": n.drives,
        })).collect::<Vec<_>>(),
    })
}

impl AdminApi {
    /// The admin API over `store`, accepting only `root_access_key`'s signatures.
    pub fn new(store: Store, region: &str, root_access_key: &str, root_secret_key: &str) -> Self {
        let provider =
            std::sync::Arc::new(StaticCredentials::single(root_access_key, root_secret_key));
        AdminApi {
            store,
            verifier: Verifier::new(region, provider),
            root_access_key: root_access_key.to_owned(),
        }
    }

    /// Serves one admin request; never fails.
    pub async fn handle(&self, req: Request<Incoming>, request_id: &str) -> Response<ResBody> {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_owned();
        let denied = |message: String| {
            let err = S3Error::new("AccessDenied", StatusCode::FORBIDDEN, message);
            response::error(&err, &path, request_id, parts.method == Method::HEAD)
        };
        match crate::s3::auth::authenticate(&self.verifier, &parts) {
            Ok(a) if a.access_key == self.root_access_key => {}
            Ok(_) => return denied("The admin API needs the root credentials.".into()),
            Err(e) => {
                tracing::info!(error = %e, %path, "admin API: authentication failed");
                return denied(format!("Admin API authentication failed: {e}"));
            }
        }
        // Bodies are not used; drain a small one so the connection stays usable.
        let _ = tokio::time::timeout(Duration::from_secs(5), body.collect()).await;
        match (&parts.method, path.as_str()) {
            (&Method::GET, HEAL_PATH) => {
                json_response(StatusCode::OK, &heal_json(&self.store.heal_status().await))
            }
            (&Method::GET, CLUSTER_PATH) => {
                json_response(StatusCode::OK, &cluster_json(&self.store.nodes()))
            }
            (&Method::POST, SCAN_PATH) => {
                self.store.scan_now();
                tracing::info!("admin API: scanner cycle requested");
                json_response(StatusCode::ACCEPTED, &json!({ "scan": "started" }))
            }
            _ => json_response(
                StatusCode::NOT_FOUND,
                &json!({ "error": format!("no admin endpoint {} {path}", parts.method) }),
            ),
        }
    }
}

// ---- CLI -------------------------------------------------------------------------------

/// `tessera admin ...`
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// Admin command families.
#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Healing: status (queue, scanner, bulk heals, drives) and starting a scan.
    #[command(subcommand)]
    Heal(HealCommand),
}

/// `tessera admin heal ...`
#[derive(Debug, Clone, Subcommand)]
pub enum HealCommand {
    /// Shows the node's healing status (a table; `--json` for the raw JSON); with
    /// `--cluster`, every node's, and whether the whole cluster is at full redundancy.
    Status(StatusArgs),
    /// Starts a full scanner cycle on the node now; with `--cluster`, on every node (fails
    /// when any node could not be asked).
    Scan(ScanArgs),
}

/// `tessera admin heal scan`.
#[derive(Debug, Clone, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub target: Target,
    /// Ask the node for the node list, then start a cycle on every node.
    #[arg(long)]
    pub cluster: bool,
}

/// `tessera admin heal status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: Target,
    /// Ask the node for the node list, then every node for its status (same credentials):
    /// one row per node and `redundancy_ok` for the whole cluster (false when any node is
    /// unreachable).
    #[arg(long)]
    pub cluster: bool,
}

/// Which node, how to sign and whom to trust. Credentials: TESSERA_ROOT_USER /
/// TESSERA_ROOT_PASSWORD, else MINIO_ROOT_*, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The node's base URL, e.g. http://127.0.0.1:9000 or https://node1.tessera:9000.
    #[arg(long, env = "TESSERA_ENDPOINT")]
    pub endpoint: String,
    /// Region the server answers for.
    #[arg(long, env = "TESSERA_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Print the JSON as the server sent it.
    #[arg(long)]
    pub json: bool,
    /// https: a PEM file of CA certificates trusted besides the system's roots (default:
    /// AWS_CA_BUNDLE).
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<std::path::PathBuf>,
    /// https: do not verify the server's certificate at all (warns on stderr).
    #[arg(long)]
    pub insecure: bool,
}

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no credentials: set TESSERA_ROOT_USER and TESSERA_ROOT_PASSWORD (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")]
    NoCredentials,
    #[error("bad endpoint {0:?}: expected http://HOST:PORT or https://HOST:PORT")]
    Endpoint(String),
    #[error(transparent)]
    Tls(#[from] ClientTlsError),
    #[error("request failed: {0}")]
    Transport(String),
    #[error("HTTP {status}: {body}")]
    Status { status: StatusCode, body: String },
    #[error("unexpected answer: {0}")]
    Answer(String),
}

fn credentials(env: impl Fn(&str) -> Option<String>) -> Result<(String, String), AdminError> {
    let pair = |u: &str, p: &str| Some((env(u)?, env(p)?));
    pair("TESSERA_ROOT_USER", "TESSERA_ROOT_PASSWORD")
        .or_else(|| pair("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"))
        .or_else(|| pair("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
        .ok_or(AdminError::NoCredentials)
}

/// How long one admin request may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A signing admin client over one connection pool, for `http://` and `https://` nodes.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: hyper_util::client::legacy::Client<
        HttpsConnector<HttpConnector>,
        http_body_util::Empty<Bytes>,
    >,
    region: String,
    access_key: String,
    secret_key: String,
    timeout: Duration,
}

impl AdminClient {
    /// A client signing with the given root key; `tls` builds the `trust` configuration
    /// (needed only for `https://` nodes).
    pub fn new(
        trust: &ClientTrust,
        tls: bool,
        region: &str,
        access_key: &str,
        secret_key: &str,
    ) -> Result<Self, AdminError> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(crate::bench::tls::connector(connector, tls, trust)?);
        Ok(AdminClient {
            http,
            region: region.to_owned(),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            timeout: CALL_TIMEOUT,
        })
    }

    /// The same client with another per-request time limit.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends one signed admin request to the node at `endpoint`; returns the status and body.
    pub async fn call(
        &self,
        endpoint: &str,
        method: Method,
        path: &str,
    ) -> Result<(StatusCode, Bytes), AdminError> {
        let uri: http::Uri = format!("{}{path}", endpoint.trim_end_matches('/'))
            .parse()
            .map_err(|_| AdminError::Endpoint(endpoint.to_owned()))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(AdminError::Endpoint(endpoint.to_owned()));
        }
        let host = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .ok_or_else(|| AdminError::Endpoint(endpoint.to_owned()))?;
        let signer =
            crate::bench::signer::Signer::new(&self.access_key, &self.secret_key, &self.region);
        let signed = signer.sign(
            method.as_str(),
            &host,
            path,
            "",
            time::OffsetDateTime::now_utc(),
        );
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::HOST, host)
            .header("x-amz-date", signed.amz_date)
            .header("x-amz-content-sha256", signed.content_sha256)
            .header(http::header::AUTHORIZATION, signed.authorization)
            .body(http_body_util::Empty::<Bytes>::new())
            .map_err(|e| AdminError::Transport(e.to_string()))?;
        let limit = self.timeout;
        let fut = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| AdminError::Transport(error_chain(&e)))?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| AdminError::Transport(error_chain(&e)))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(limit, fut)
            .await
            .map_err(|_| AdminError::Transport(format!("no answer within {} s", limit.as_secs())))?
    }

    /// A call whose answer must be a 2xx JSON document.
    pub async fn call_json(
        &self,
        endpoint: &str,
        method: Method,
        path: &str,
    ) -> Result<Value, AdminError> {
        let (status, body) = self.call(endpoint, method, path).await?;
        if !status.is_success() {
            return Err(AdminError::Status {
                status,
                body: String::from_utf8_lossy(&body).chars().take(500).collect(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| AdminError::Answer(e.to_string()))
    }
}

/// An error and its sources, one line (rustls' reason sits in a source).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

/// Sends one signed admin request (system root certificates for `https://`); returns the
/// status and body.
pub async fn call(
    endpoint: &str,
    region: &str,
    access_key: &str,
    secret_key: &str,
    method: Method,
    path: &str,
) -> Result<(StatusCode, Bytes), AdminError> {
    let tls = endpoint.starts_with("https://");
    AdminClient::new(&ClientTrust::default(), tls, region, access_key, secret_key)?
        .call(endpoint, method, path)
        .await
}

/// One node's answer to a request [`ask_every_node`] sent it.
struct NodeAnswer {
    /// The node as the endpoint list names it (the asked node as the operator reached it
    /// when the list names no address).
    endpoint: Value,
    local: bool,
    /// Its liveness state as the asked node sees it.
    seen_as: Value,
    answer: Result<Value, AdminError>,
}

/// Asks the node at `endpoint` for the node list, then sends `method path` to every node
/// (the asked node as the operator reached it, the others by the endpoint list's address).
async fn ask_every_node(
    client: &AdminClient,
    endpoint: &str,
    method: Method,
    path: &str,
) -> Result<Vec<NodeAnswer>, AdminError> {
    let list = client
        .call_json(endpoint, Method::GET, CLUSTER_PATH)
        .await?;
    let nodes = list["nodes"]
        .as_array()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| AdminError::Answer("no nodes in the cluster answer".into()))?;
    let asks = nodes.iter().map(|n| {
        let local = n["local"].as_bool().unwrap_or(false);
        let url = if local {
            Some(endpoint.trim_end_matches('/').to_owned())
        } else {
            n["endpoint"].as_str().map(str::to_owned)
        };
        let method = method.clone();
        async move {
            let answer = match &url {
                Some(u) => client.call_json(u, method, path).await,
                None => Err(AdminError::Answer("the node list names no address".into())),
            };
            NodeAnswer {
                endpoint: json!(n["endpoint"].as_str().map(str::to_owned).or(url)),
                local,
                seen_as: n["state"].clone(),
                answer,
            }
        }
    });
    Ok(futures::future::join_all(asks).await)
}

/// Every node's heal status, gathered through the node at `endpoint` (which names the
/// others): `{"redundancy_ok": bool, "nodes": [{"endpoint", "local", "seen_as", "reachable",
/// "error", "status"}]}` where `status` is the node's `/heal` JSON (null when unreachable)
/// and `seen_as` its liveness state as the asked node sees it. The cluster is at full
/// redundancy only when every node answered and reports `redundancy_ok`.
pub async fn cluster_status(client: &AdminClient, endpoint: &str) -> Result<Value, AdminError> {
    let rows: Vec<Value> = ask_every_node(client, endpoint, Method::GET, HEAL_PATH)
        .await?
        .into_iter()
        .map(|n| {
            let (reachable, error, status) = match n.answer {
                Ok(v) => (true, Value::Null, v),
                Err(e) => (false, Value::String(e.to_string()), Value::Null),
            };
            json!({
                "endpoint": n.endpoint,
                "local": n.local,
                "seen_as": n.seen_as,
                "reachable": reachable,
                "error": error,
                "status": status,
            })
        })
        .collect();
    let ok = rows
        .iter()
        .all(|r| r["reachable"] == true && r["status"]["redundancy_ok"] == true);
    Ok(json!({ "redundancy_ok": ok, "nodes": rows }))
}

/// Starts a scanner cycle on every node, through the node at `endpoint`: `{"started": n,
/// "nodes": [{"endpoint", "local", "seen_as", "started", "error"}]}`.
pub async fn cluster_scan(client: &AdminClient, endpoint: &str) -> Result<Value, AdminError> {
    let rows: Vec<Value> = ask_every_node(client, endpoint, Method::POST, SCAN_PATH)
        .await?
        .into_iter()
        .map(|n| {
            let error = n.answer.err().map(|e| e.to_string());
            json!({
                "endpoint": n.endpoint,
                "local": n.local,
                "seen_as": n.seen_as,
                "started": error.is_none(),
                "error": error,
            })
        })
        .collect();
    let started = rows.iter().filter(|r| r["started"] == true).count();
    Ok(json!({ "started": started, "nodes": rows }))
}

/// The text of a [`cluster_scan`] JSON: a line per node.
pub fn cluster_scan_lines(v: &Value) -> String {
    let mut out = String::new();
    for n in v["nodes"].as_array().into_iter().flatten() {
        let name = n["endpoint"].as_str().unwrap_or("(this node)");
        if n["started"] == true {
            out.push_str(&format!("{name}: scan started\n"));
        } else {
            let why = n["error"].as_str().unwrap_or("no answer");
            out.push_str(&format!("{name}: NOT started: {why}\n"));
        }
    }
    out
}

/// Runs `tessera admin ...`, printing to stdout.
pub async fn run_cli(args: AdminArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (ak, sk) = credentials(|k| std::env::var(k).ok())?;
    let AdminCommand::Heal(cmd) = args.command;
    let (target, cluster) = match &cmd {
        HealCommand::Status(s) => (&s.target, s.cluster),
        HealCommand::Scan(s) => (&s.target, s.cluster),
    };
    let trust = ClientTrust::from_flags(target.ca_bundle.clone(), target.insecure, |k| {
        std::env::var(k).ok()
    });
    if trust.insecure {
        eprintln!(
            "tessera admin: WARNING: --insecure: the server's TLS certificate is not verified"
        );
    }
    let tls = target.endpoint.starts_with("https://");
    let client = AdminClient::new(&trust, tls, &target.region, &ak, &sk)?;
    let mut failure = None;
    let text = if cluster {
        // Peers that do not answer must not hold the whole report for long.
        let client = client.with_timeout(Duration::from_secs(10));
        let (v, text) = match &cmd {
            HealCommand::Status(_) => {
                let v = cluster_status(&client, &target.endpoint).await?;
                let t = cluster_table(&v);
                (v, t)
            }
            HealCommand::Scan(_) => {
                let v = cluster_scan(&client, &target.endpoint).await?;
                let all = v["nodes"].as_array().map_or(0, Vec::len);
                let started = v["started"].as_u64().unwrap_or(0) as usize;
                if started < all {
                    failure = Some(format!(
                        "the scan was not started on {} of {all} nodes",
                        all - started
                    ));
                }
                let t = cluster_scan_lines(&v);
                (v, t)
            }
        };
        if target.json {
            format!("{}\n", serde_json::to_string_pretty(&v)?)
        } else {
            text
        }
    } else {
        let (method, path) = match &cmd {
            HealCommand::Status(_) => (Method::GET, HEAL_PATH),
            HealCommand::Scan(_) => (Method::POST, SCAN_PATH),
        };
        let (status, body) = client.call(&target.endpoint, method, path).await?;
        if !status.is_success() {
            return Err(AdminError::Status {
                status,
                body: String::from_utf8_lossy(&body).chars().take(500).collect(),
            }
            .into());
        }
        match &cmd {
            HealCommand::Status(_) if !target.json => {
                let v: Value =
                    serde_json::from_slice(&body).map_err(|e| AdminError::Answer(e.to_string()))?;
                status_table(&v)
            }
            _ => format!("{}\n", String::from_utf8_lossy(&body).trim_end()),
        }
    };
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    match failure {
        Some(f) => Err(f.into()),
        None => Ok(()),
    }
}

/// The human table of a [`cluster_status`] JSON: one row per node, then the verdict.
pub fn cluster_table(v: &Value) -> String {
    let mut s = format!(
        "{:<40} {:<8} {:<10} {:>7} {:>9} {:>5}  {}\n",
        "NODE", "SEEN AS", "REDUNDANCY", "QUEUE", "DRIVES OK", "BULK", "NOTE"
    );
    for n in v["nodes"].as_array().into_iter().flatten() {
        let st = &n["status"];
        let drives = st["drives"].as_array().cloned().unwrap_or_default();
        let local: Vec<&Value> = drives.iter().filter(|d| d["local"] == true).collect();
        let ok = local.iter().filter(|d| d["state"] == "ok").count();
        let running = st["bulk"]
            .as_array()
            .map(|b| b.iter().filter(|j| j["state"] == "running").count())
            .unwrap_or(0);
        let (redundancy, note) = if n["reachable"] == true {
            let mut bad: Vec<String> = local
                .iter()
                .filter(|d| d["state"] != "ok")
                .map(|d| {
                    format!(
                        "{} {}",
                        d["endpoint"].as_str().unwrap_or("?"),
                        d["state"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            let peers_down = drives
                .iter()
                .filter(|d| d["local"] != true && d["state"] != "ok")
                .count();
            if peers_down > 0 {
                bad.push(format!("sees {peers_down} peer drive(s) not ok"));
            }
            let r = if st["redundancy_ok"] == true {
                "OK"
            } else {
                "DEGRADED"
            };
            (r, bad.join(", "))
        } else {
            (
                "UNKNOWN",
                format!("unreachable: {}", n["error"].as_str().unwrap_or("?")),
            )
        };
        let row = format!(
            "{:<40} {:<8} {:<10} {:>7} {:>9} {:>5}  {}",
            format!(
                "{}{}",
                n["endpoint"].as_str().unwrap_or("(this node)"),
                if n["local"] == true { " *" } else { "" }
            ),
            n["seen_as"].as_str().unwrap_or("?"),
            redundancy,
            st["queue"]["pending"]
                .as_u64()
                .map_or("-".into(), |q| q.to_string()),
            if n["reachable"] == true {
                format!("{ok}/{}", local.len())
            } else {
                "-".into()
            },
            running,
            note,
        );
        s.push_str(row.trim_end());
        s.push('\n');
    }
    s.push_str(&format!(
        "\nCluster redundancy: {}  (* = the node asked; DRIVES OK counts each node's own drives)\n",
        if v["redundancy_ok"] == true {
            "OK"
        } else {
            "DEGRADED"
        }
    ));
    s
}

fn mib(v: &Value) -> String {
    format!("{:.1} MiB", v.as_f64().unwrap_or(0.0) / 1048576.0)
}

/// The human table of a heal status JSON.
pub fn status_table(v: &Value) -> String {
    let mut s = String::new();
    let ok = v["redundancy_ok"].as_bool().unwrap_or(false);
    s.push_str(&format!(
        "Redundancy: {}\nQueue: {} object(s) pending\n",
        if ok { "OK" } else { "DEGRADED" },
        v["queue"]["pending"]
    ));
    let sc = &v["scanner"];
    s.push_str(&format!(
        "Scanner: {} | cycles {} | scanned {} ({}) healed {} failed {} | orphans removed {} | last cycle {} s | sets here {}\n",
        if sc["running"].as_bool().unwrap_or(false) { "running" } else { "idle" },
        sc["cycles"],
        sc["objects_scanned"],
        mib(&sc["bytes_scanned"]),
        sc["objects_healed"],
        sc["objects_failed"],
        sc["orphans_removed"],
        sc["last_cycle_seconds"].as_f64().map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into()),
        sc["sets_scanned_here"],
    ));
    s.push_str(&format!(
        "\n{:<48} {:<6} {:<8} {}\n",
        "DRIVE", "SLOT", "STATE", "LOCAL"
    ));
    for d in v["drives"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "{:<48} {:<6} {:<8} {}\n",
            d["endpoint"].as_str().unwrap_or("?"),
            d["slot"].as_str().unwrap_or("?"),
            d["state"].as_str().unwrap_or("?"),
            if d["local"].as_bool().unwrap_or(false) {
                "yes"
            } else {
                "no"
            },
        ));
    }
    let bulk = v["bulk"].as_array().cloned().unwrap_or_default();
    if !bulk.is_empty() {
        s.push_str(&format!(
            "\n{:<40} {:<8} {:>16} {:>7} {:>7} {:>12} {:>8}\n",
            "BULK HEAL", "STATE", "OBJECTS", "HEALED", "FAILED", "BYTES", "ETA"
        ));
        for b in bulk {
            s.push_str(&format!(
                "{:<40} {:<8} {:>16} {:>7} {:>7} {:>12} {:>8}\n",
                b["drive"].as_str().unwrap_or("?"),
                b["state"].as_str().unwrap_or("?"),
                format!("{}/{}", b["objects_scanned"], b["total_objects"]),
                b["objects_healed"],
                b["objects_failed"],
                mib(&b["bytes_healed"]),
                b["eta_seconds"]
                    .as_u64()
                    .map(|e| format!("{e} s"))
                    .unwrap_or_else(|| "-".into()),
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_table_has_a_row_per_node_and_the_verdict() {
        let v = json!({
            "redundancy_ok": false,
            "nodes": [
                {"endpoint": "http://n1:9000", "local": true, "seen_as": "online",
                 "reachable": true, "error": null,
                 "status": {"redundancy_ok": false, "queue": {"pending": 3}, "bulk": [],
                    "drives": [
                        {"endpoint": "http://n1:9000/d1", "state": "ok", "local": true},
                        {"endpoint": "http://n1:9000/d2", "state": "unmounted", "local": true},
                        {"endpoint": "http://n2:9000/d1", "state": "offline", "local": false}]}},
                {"endpoint": "http://n2:9000", "local": false, "seen_as": "offline",
                 "reachable": false, "error": "request failed: refused", "status": null},
            ],
        });
        let t = cluster_table(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[1].starts_with("http://n1:9000 *"), "{t}");
        assert!(lines[1].contains("DEGRADED"), "{t}");
        assert!(lines[1].contains("1/2"), "{t}");
        assert!(lines[1].contains("http://n1:9000/d2 unmounted"), "{t}");
        assert!(lines[1].contains("sees 1 peer drive(s) not ok"), "{t}");
        assert!(lines[2].contains("offline"), "{t}");
        assert!(
            lines[2].contains("unreachable: request failed: refused"),
            "{t}"
        );
        assert!(t.contains("Cluster redundancy: DEGRADED"), "{t}");
        assert!(lines.iter().all(|l| !l.ends_with(' ')), "{t}");
    }
}
