//! `RemoteDrive` against `LocalDrive`: the same script of `Drive` calls runs on a local drive
//! and, over a real 127.0.0.1 socket, on an identical local drive behind an `RpcService`; the
//! results and the bytes left on disk must match. Also pins internode authentication
//! (unsigned, wrong-key, stale and tampered requests get 403 and change nothing), the offline
//! mapping of dead and silent nodes (prompt, no hang), and readers surviving a service
//! restart.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::ops::{Bound, Range};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::drive::{DataMove, Drive, LocalDrive, RemoteDrive};
use cluster::format::{FormatRecord, FORMAT_VERSION};
use cluster::metastore::{MetaOp, ScanRange, Table};
use cluster::names::DataId;
use cluster::rpc::{self, wire, InternodeKey, RpcClient, RpcService, RpcTimeouts, Transport};
use cluster::DriveError;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

fn format_record(slot: usize) -> FormatRecord {
    FormatRecord {
        version: FORMAT_VERSION,
        deployment_id: "dep-test".into(),
        drive_id: format!("drive-{slot}"),
        set_index: 0,
        slot,
        sets: 1,
        drives_per_set: 2,
    }
}

fn open_local(root: &Path, endpoint: &str) -> LocalDrive {
    let f = format_record(0);
    LocalDrive::write_format(root, &f).expect("format written");
    LocalDrive::open(root, endpoint.to_owned(), f).expect("drive opens")
}

fn key() -> InternodeKey {
    InternodeKey::derive("root-access", "root-secret")
}

/// A tiny HTTP server on 127.0.0.1:0 answering every request with `rpc::serve` on the
/// service currently in `slot` (so a test can swap it, as a restart would).
struct TestServer {
    addr: SocketAddr,
    slot: Arc<Mutex<Arc<RpcService>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start_server(service: RpcService) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let slot = Arc::new(Mutex::new(Arc::new(service)));
    let s = slot.clone();
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            let s = s.clone();
            conns.spawn(async move {
                let svc = service_fn(move |req| {
                    let state = s.lock().expect("slot lock").clone();
                    async move { Ok::<_, Infallible>(rpc::serve(&state, req).await) }
                });
                // Configured like the S3 server's listener (adaptive HTTP/2 windows).
                let mut b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                b.http2().adaptive_window(true);
                let _ = b.serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    TestServer { addr, slot, task }
}

/// A local drive, and a remote drive in front of an identical local drive on a server.
struct Pair {
    _dir: tempfile::TempDir,
    local_root: PathBuf,
    served_root: PathBuf,
    local: LocalDrive,
    served: Arc<LocalDrive>,
    remote: RemoteDrive,
    server: TestServer,
    endpoint: String,
}

async fn pair_with(transport: Transport) -> Pair {
    let dir = tempfile::tempdir().expect("temp dir");
    let local_root = dir.path().join("local");
    let served_root = dir.path().join("served");
    let local = open_local(&local_root, "local");
    // The endpoint names the server's port, so bind first and name the drive after it.
    let listener_probe = start_server(RpcService::new(vec![], key())).await;
    let endpoint = format!("http://{}/served", listener_probe.addr);
    let served = Arc::new(open_local(&served_root, &endpoint));
    *listener_probe.slot.lock().expect("slot lock") = Arc::new(RpcService::new(
        vec![(endpoint.clone(), served.clone() as Arc<dyn Drive>)],
        key(),
    ));
    let client = RpcClient::with_transport(key(), RpcTimeouts::default(), transport);
    let remote = RemoteDrive::new(&endpoint, client).expect("remote drive");
    Pair {
        _dir: dir,
        local_root,
        served_root,
        local,
        served,
        remote,
        server: listener_probe,
        endpoint,
    }
}

async fn pair() -> Pair {
    pair_with(Transport::Http1).await
}

fn id(n: u8) -> DataId {
    DataId::parse(&format!("{:032x}", u128::from(n) * 0x1111_1111)).expect("valid data id")
}

/// An error by variant and message, with the drive roots taken out.
fn show_err(e: &DriveError, roots: &[&Path]) -> String {
    let variant = match e {
        DriveError::Offline(_) | DriveError::NoAnswer(_) => "Offline",
        DriveError::NotFound => "NotFound",
        DriveError::Io { .. } => "Io",
        DriveError::Meta(_) => "Meta",
        DriveError::Corrupt(_) => "Corrupt",
        DriveError::Invalid(_) => "Invalid",
    };
    let mut msg = e.to_string();
    for r in roots {
        msg = msg.replace(&r.display().to_string(), "<root>");
    }
    format!("{variant}: {msg}")
}

fn show<T: std::fmt::Debug>(r: Result<T, DriveError>, roots: &[&Path]) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => show_err(&e, roots),
    }
}

fn digest(r: Result<Vec<u8>, DriveError>, roots: &[&Path]) -> String {
    show(
        r.map(|v| (v.len(), blake3::hash(&v).to_hex().to_string())),
        roots,
    )
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 12) as u8)
        .collect()
}

fn put(table: Table, k: &str, v: &[u8]) -> MetaOp {
    MetaOp::Put {
        table,
        key: k.as_bytes().to_vec(),
        value: v.to_vec(),
    }
}

/// The script both drives run; every result is recorded as text.
async fn script(d: &dyn Drive, roots: &[&Path]) -> Vec<String> {
    let mut log = Vec::new();
    let bucket = "bkt";

    // Metadata.
    log.push(show(
        d.meta_apply(vec![
            put(Table::Buckets, bucket, b"rec"),
            put(Table::Objects, "bkt/a", b"va"),
            put(Table::Objects, "bkt/a/b", &[0, 255, 7]),
            put(Table::Objects, "bkt/c", b""),
            put(Table::Objects, "other/x", b"vx"),
        ])
        .await,
        roots,
    ));
    log.push(show(
        d.meta_get(Table::Objects, b"bkt/a/b".to_vec()).await,
        roots,
    ));
    log.push(show(
        d.meta_get(Table::Objects, b"nope".to_vec()).await,
        roots,
    ));
    log.push(show(
        d.meta_scan(Table::Objects, ScanRange::prefix(b"bkt/", 100))
            .await,
        roots,
    ));
    log.push(show(
        d.meta_scan(Table::Objects, ScanRange::prefix(b"bkt/", 2))
            .await,
        roots,
    ));
    log.push(show(
        d.meta_scan(
            Table::Objects,
            ScanRange {
                start: Bound::Excluded(b"bkt/a".to_vec()),
                end: Bound::Unbounded,
                limit: usize::MAX,
            },
        )
        .await,
        roots,
    ));

    // A staged write of two shard files, a multi-MiB one in many blocks.
    let tmp = id(1);
    let data_id = id(2);
    let big: Vec<Vec<u8>> = (0..40u8)
        .map(|i| pattern(100_000 + usize::from(i) * 977, i))
        .collect();
    let mut w = d
        .create_staged(&tmp, "part.1")
        .await
        .expect("create part.1");
    for block in &big {
        w.write(Bytes::from(block.clone()))
            .await
            .expect("write block");
    }
    w.write(Bytes::new()).await.expect("empty write");
    log.push(show(w.finish().await, roots));
    let w = d
        .create_staged(&tmp, "part.2")
        .await
        .expect("create part.2");
    log.push(show(w.finish().await, roots));
    log.push(show(
        d.commit(
            Some(DataMove {
                tmp: tmp.clone(),
                bucket: bucket.into(),
                data_id: data_id.clone(),
            }),
            vec![put(Table::Objects, "bkt/big", b"record")],
        )
        .await,
        roots,
    ));
    log.push(show(
        d.meta_get(Table::Objects, b"bkt/big".to_vec()).await,
        roots,
    ));
    let whole: Vec<u8> = big.concat();
    let total = whole.len();
    log.push(format!("total {total}"));

    // Reads.
    log.push(digest(
        d.read_shard(bucket, &data_id, "part.1", 0, total).await,
        roots,
    ));
    log.push(digest(
        d.read_shard(bucket, &data_id, "part.1", 12_345, 300_000)
            .await,
        roots,
    ));
    log.push(digest(
        d.read_shard(bucket, &data_id, "part.2", 0, 0).await,
        roots,
    ));
    log.push(digest(
        d.read_shard(bucket, &data_id, "part.1", total as u64 - 10, 11)
            .await,
        roots,
    ));
    log.push(digest(
        d.read_shard(bucket, &data_id, "part.9", 0, 1).await,
        roots,
    ));
    log.push(digest(
        d.read_shard(bucket, &id(9), "part.1", 0, 1).await,
        roots,
    ));
    log.push(digest(
        d.read_shard("Bad_Bucket", &data_id, "part.1", 0, 1).await,
        roots,
    ));
    log.push(digest(
        d.read_shard(bucket, &data_id, "../x", 0, 1).await,
        roots,
    ));
    let same = d
        .read_shard(bucket, &data_id, "part.1", 0, total)
        .await
        .map(|v| v == whole);
    log.push(show(same, roots));

    // An open reader keeps reading after its data directory is deleted.
    let reader = d
        .open_shard(bucket, &data_id, "part.1")
        .await
        .expect("open");
    log.push(digest(reader.read_at(1000, 5000).await, roots));
    let ranges: Vec<Range<u64>> = vec![0..10, 10..100_000, 500_000..500_001, 7..7];
    log.push(show(
        reader.read_ranges(ranges.clone()).await.map(|v| {
            v.iter()
                .map(|p| blake3::hash(p).to_hex().to_string())
                .collect::<Vec<_>>()
        }),
        roots,
    ));
    let want: Vec<Vec<u8>> = ranges
        .iter()
        .map(|r| whole[r.start as usize..r.end as usize].to_vec())
        .collect();
    log.push(show(
        reader.read_ranges(ranges).await.map(|v| v == want),
        roots,
    ));
    log.push(digest(reader.read_at(total as u64 - 1, 2).await, roots));
    log.push(show(
        d.open_shard(bucket, &data_id, "part.7")
            .await
            .map(|_| "opened"),
        roots,
    ));

    // Whole-file writes (heal), single-file deletes.
    let healed = pattern(300_000, 99);
    log.push(show(
        d.write_shard_file(bucket, &data_id, "part.3", Bytes::from(healed.clone()))
            .await,
        roots,
    ));
    log.push(show(
        d.read_shard(bucket, &data_id, "part.3", 0, healed.len())
            .await
            .map(|v| v == healed),
        roots,
    ));
    log.push(show(
        d.delete_data_file(bucket, &data_id, "part.2").await,
        roots,
    ));
    log.push(show(
        d.delete_data_file(bucket, &data_id, "part.2").await,
        roots,
    ));
    log.push(digest(
        d.read_shard(bucket, &data_id, "part.2", 0, 0).await,
        roots,
    ));

    log.push(show(d.delete_data(bucket, &data_id).await, roots));
    log.push(digest(reader.read_at(0, 100).await, roots));
    drop(reader);
    log.push(digest(
        d.read_shard(bucket, &data_id, "part.1", 0, 1).await,
        roots,
    ));
    log.push(show(d.delete_data(bucket, &data_id).await, roots));

    // Staging that is abandoned, then removed; bad names; commits of missing staging.
    let tmp2 = id(3);
    let mut w = d.create_staged(&tmp2, "part.1").await.expect("create");
    w.write(Bytes::from(pattern(5000, 1))).await.expect("write");
    drop(w);
    // A remote upload dropped unfinished is cut asynchronously; give the service a moment
    // to see the cut before the staging is removed (otherwise its late create could leave
    // tmp/ garbage, which the next open empties).
    tokio::time::sleep(Duration::from_millis(300)).await;
    log.push(show(d.remove_staged(&tmp2).await, roots));
    log.push(show(d.remove_staged(&tmp2).await, roots));
    log.push(show(
        d.create_staged(&tmp2, "../evil").await.map(|_| ()),
        roots,
    ));
    log.push(show(
        d.commit(
            Some(DataMove {
                tmp: id(4),
                bucket: bucket.into(),
                data_id: id(5),
            }),
            vec![put(Table::Objects, "bkt/never", b"x")],
        )
        .await,
        roots,
    ));
    log.push(show(
        d.meta_get(Table::Objects, b"bkt/never".to_vec()).await,
        roots,
    ));
    log.push(show(
        d.commit(
            None,
            vec![MetaOp::Delete {
                table: Table::Objects,
                key: b"bkt/a".to_vec(),
            }],
        )
        .await,
        roots,
    ));
    log.push(show(
        d.meta_scan(Table::Objects, ScanRange::prefix(b"", 100))
            .await,
        roots,
    ));

    // A version record committed with the previous one handed back, then read with the
    // inline shard it points to (one node call each for a remote drive).
    let inline_id = id(9);
    let record = |version: &str, location: cluster::record::DataLocation| {
        let r = serde_json::json!({
            "version_id": version, "mod_time_ns": 1, "size": 3, "etag": "e",
            "meta": cluster::ObjectMeta::default(), "checksum": null,
            "erasure": {"data": 1, "parity": 1, "block_size": 1024, "rotation": 0, "shard_index": 0},
            "location": location, "parts": [], "multipart": false
        });
        serde_json::to_vec(&r).expect("record encodes")
    };
    let v1 = record(
        "v1",
        cluster::record::DataLocation::Inline(inline_id.clone()),
    );
    let v2 = record("v2", cluster::record::DataLocation::Files(id(10)));
    log.push(show(
        d.commit_version(
            None,
            vec![
                put(Table::Objects, "bkt/small", &v1),
                put(Table::Inline, inline_id.as_str(), b"shard"),
            ],
            b"bkt/small".to_vec(),
        )
        .await,
        roots,
    ));
    let got = d.read_version(b"bkt/small".to_vec(), true).await;
    assert!(
        matches!(&got, Ok(Some(v)) if v.record == v1 && v.inline.as_deref() == Some(&b"shard"[..])),
        "record and inline shard read together: {got:?}"
    );
    log.push(show(got, roots));
    log.push(show(
        d.read_version(b"bkt/small".to_vec(), false).await,
        roots,
    ));
    log.push(show(
        d.read_version(b"bkt/none".to_vec(), true).await,
        roots,
    ));
    let replaced = d
        .commit_version(
            None,
            vec![put(Table::Objects, "bkt/small", &v2)],
            b"bkt/small".to_vec(),
        )
        .await;
    assert!(
        matches!(&replaced, Ok(Some(prev)) if *prev == v1),
        "the commit hands back the record it replaced: {replaced:?}"
    );
    log.push(show(replaced, roots));
    log.push(show(
        d.read_version(b"bkt/small".to_vec(), true).await,
        roots,
    ));

    let info = d.info().await.map(|i| (i.online, i.format));
    log.push(show(info, roots));
    log
}

/// Every file under `root/data` and `root/.tessera.sys/tmp`, with its contents' hash.
fn tree(root: &Path) -> Vec<(String, String)> {
    fn walk(base: &Path, p: &Path, out: &mut Vec<(String, String)>) {
        let Ok(entries) = std::fs::read_dir(p) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path
                    .strip_prefix(base)
                    .expect("under base")
                    .display()
                    .to_string();
                let bytes = std::fs::read(&path).expect("readable");
                out.push((rel, blake3::hash(&bytes).to_hex().to_string()));
            }
        }
    }
    let mut out = Vec::new();
    for sub in ["data", ".tessera.sys/tmp"] {
        walk(root, &root.join(sub), &mut out);
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_drive_behaves_like_local_drive() {
    same_as_local(pair().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_drive_over_http2_behaves_like_local_drive() {
    same_as_local(pair_with(Transport::Http2).await).await;
}

async fn same_as_local(p: Pair) {
    let roots = [p.local_root.as_path(), p.served_root.as_path()];
    let local = tokio::time::timeout(Duration::from_secs(60), script(&p.local, &roots))
        .await
        .expect("local script in time");
    let remote = tokio::time::timeout(Duration::from_secs(60), script(&p.remote, &roots))
        .await
        .expect("remote script in time");
    assert_eq!(local.len(), remote.len());
    for (i, (l, r)) in local.iter().zip(&remote).enumerate() {
        assert_eq!(l, r, "step {i} differs");
    }
    // Spot checks that the script tested what it claims.
    assert!(local.iter().any(|l| l.starts_with("Corrupt")), "{local:#?}");
    assert!(
        local.iter().any(|l| l.starts_with("NotFound")),
        "{local:#?}"
    );
    assert!(local.iter().any(|l| l.starts_with("Invalid")), "{local:#?}");
    assert_eq!(p.remote.endpoint(), p.endpoint);
    // The abandoned upload's directory was removed on both; what is left on disk matches.
    assert_eq!(tree(&p.local_root), tree(&p.served_root));
    // Readers were closed on the service when dropped.
    let state = p.server.slot.lock().expect("slot").clone();
    let deadline = Instant::now() + Duration::from_secs(5);
    while state.open_readers() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(state.open_readers(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drive_info_travels_with_its_format_record() {
    let p = pair().await;
    let info = p.remote.info().await.expect("info");
    assert_eq!(info.endpoint, p.endpoint);
    assert!(info.online);
    assert_eq!(info.format, Some(format_record(0)));
    assert_eq!(p.served.info().await.expect("info").format, info.format);
}

/// Sends one hand-built internode request; returns status and body.
async fn raw(
    addr: SocketAddr,
    method: http::Method,
    path_and_query: &str,
    headers: &[(&str, String)],
    body: Bytes,
) -> (http::StatusCode, Bytes) {
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
    let mut b = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path_and_query}"));
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    let resp = client
        .request(b.body(Full::new(body)).expect("request"))
        .await
        .expect("server answers");
    let status = resp.status();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, body)
}

/// A correctly formed `meta_apply` request putting `key`, signed with `k` at `date`.
fn meta_apply_request(
    endpoint: &str,
    k: &InternodeKey,
    date: u64,
    key: &str,
) -> (String, Vec<(&'static str, String)>, Bytes) {
    let body = serde_json::to_vec(&wire::ApplyRequest {
        ops: vec![put(Table::Buckets, key, b"x").into()],
    })
    .expect("json");
    let path = format!(
        "{}{}/meta_apply",
        wire::PREFIX,
        wire::drive_segment(endpoint)
    );
    let query = wire::encode_query(&[(
        wire::BODY_HASH_PARAM,
        blake3::hash(&body).to_hex().to_string(),
    )]);
    let mac = k.sign("POST", &path, &query, date, Some(body.len() as u64));
    (
        format!("{path}?{query}"),
        vec![
            (rpc::auth::DATE_HEADER, date.to_string()),
            (rpc::auth::AUTH_HEADER, mac),
        ],
        Bytes::from(body),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_requests_get_403_and_change_nothing() {
    let p = pair().await;
    let now = rpc::auth::now_secs();
    let addr = p.server.addr;
    let bucket_present = |name: &'static str| {
        let d = p.served.clone();
        async move {
            d.meta_get(Table::Buckets, name.as_bytes().to_vec())
                .await
                .expect("get")
                .is_some()
        }
    };

    // No auth headers at all.
    let (uri, _, body) = meta_apply_request(&p.endpoint, &key(), now, "unsigned");
    let (s, b) = raw(addr, http::Method::POST, &uri, &[], body).await;
    assert_eq!((s, b.len()), (http::StatusCode::FORBIDDEN, 0));
    assert!(!bucket_present("unsigned").await);

    // Signed with another key.
    let other = InternodeKey::derive("root-access", "another-secret");
    let (uri, h, body) = meta_apply_request(&p.endpoint, &other, now, "wrongkey");
    let (s, b) = raw(addr, http::Method::POST, &uri, &h, body).await;
    assert_eq!((s, b.len()), (http::StatusCode::FORBIDDEN, 0));
    assert!(!bucket_present("wrongkey").await);

    // Correct key, but dated ten minutes ago (a replay outside the window).
    let (uri, h, body) = meta_apply_request(&p.endpoint, &key(), now - 600, "stale");
    let (s, b) = raw(addr, http::Method::POST, &uri, &h, body).await;
    assert_eq!((s, b.len()), (http::StatusCode::FORBIDDEN, 0));
    assert!(!bucket_present("stale").await);

    // Correct MAC, but the body swapped for another of the same length: the signed body
    // hash no longer matches, so nothing is applied.
    let (uri, h, _) = meta_apply_request(&p.endpoint, &key(), now, "swapaa");
    let (_, _, other_body) = meta_apply_request(&p.endpoint, &key(), now, "swapbb");
    let (s, _) = raw(addr, http::Method::POST, &uri, &h, other_body).await;
    assert_eq!(s, http::StatusCode::BAD_REQUEST);
    assert!(!bucket_present("swapaa").await && !bucket_present("swapbb").await);

    // A signed request replayed with a different query (target) is refused.
    let (uri, h, body) = meta_apply_request(&p.endpoint, &key(), now, "tamper");
    let (s, _) = raw(addr, http::Method::POST, &format!("{uri}&x=1"), &h, body).await;
    assert_eq!(s, http::StatusCode::FORBIDDEN);
    assert!(!bucket_present("tamper").await);

    // Positive control: the same request, properly signed, is applied.
    let (uri, h, body) = meta_apply_request(&p.endpoint, &key(), now, "signed");
    let (s, _) = raw(addr, http::Method::POST, &uri, &h, body).await;
    assert_eq!(s, http::StatusCode::NO_CONTENT);
    assert!(bucket_present("signed").await);

    // Unsigned destructive calls and uploads do nothing either.
    p.served
        .write_shard_file("bkt", &id(7), "part.1", Bytes::from_static(b"keep me"))
        .await
        .expect("seed file");
    let seg = wire::drive_segment(&p.endpoint);
    let del = format!(
        "{}{seg}/delete_data?{}",
        wire::PREFIX,
        wire::encode_query(&[("bucket", "bkt".into()), ("data_id", id(7).to_string())])
    );
    let (s, _) = raw(addr, http::Method::POST, &del, &[], Bytes::new()).await;
    assert_eq!(s, http::StatusCode::FORBIDDEN);
    let up = format!(
        "{}{seg}/create_staged?{}",
        wire::PREFIX,
        wire::encode_query(&[("tmp", id(8).to_string()), ("file", "part.1".into())])
    );
    let mut framed = 3u32.to_be_bytes().to_vec();
    framed.extend_from_slice(b"abc\0\0\0\0");
    let (s, _) = raw(addr, http::Method::POST, &up, &[], Bytes::from(framed)).await;
    assert_eq!(s, http::StatusCode::FORBIDDEN);
    assert_eq!(
        p.served
            .read_shard("bkt", &id(7), "part.1", 0, 7)
            .await
            .expect("still there"),
        b"keep me"
    );
    assert!(!p
        .served_root
        .join(".tessera.sys/tmp")
        .join(id(8).as_str())
        .exists());

    // A RemoteDrive holding the wrong key sees the drive as offline and changes nothing.
    let wrong = RemoteDrive::new(&p.endpoint, RpcClient::new(other)).expect("remote");
    let err = wrong.delete_data("bkt", &id(7)).await.expect_err("refused");
    assert!(
        matches!(err, DriveError::Offline(_) | DriveError::NoAnswer(_)),
        "{err}"
    );
    assert!(err.to_string().contains("authentication"), "{err}");
    assert!(p
        .served
        .read_shard("bkt", &id(7), "part.1", 0, 7)
        .await
        .is_ok());
}

fn short_timeouts() -> RpcTimeouts {
    RpcTimeouts {
        connect: Duration::from_millis(500),
        unary: Duration::from_millis(500),
        stream_idle: Duration::from_millis(500),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_is_offline_at_once() {
    // A port nobody listens on any more.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let d = RemoteDrive::new(&format!("http://{addr}/gone"), RpcClient::new(key()))
        .expect("remote drive");
    let started = Instant::now();
    let errs = vec![
        d.meta_get(Table::Objects, b"k".to_vec()).await.map(drop),
        d.info().await.map(drop),
        d.read_shard("bkt", &id(1), "part.1", 0, 10).await.map(drop),
        d.open_shard("bkt", &id(1), "part.1").await.map(drop),
        async {
            let mut w = d.create_staged(&id(1), "part.1").await?;
            w.write(Bytes::from_static(b"abc")).await?;
            w.finish().await
        }
        .await,
    ];
    for e in errs {
        assert!(
            matches!(e, Err(DriveError::Offline(_) | DriveError::NoAnswer(_))),
            "{e:?}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_times_out_as_offline() {
    // Accepts connections, reads nothing, answers nothing (a stopped process).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let d = RemoteDrive::new(
        &format!("http://{addr}/stopped"),
        RpcClient::with_timeouts(key(), short_timeouts()),
    )
    .expect("remote drive");
    let started = Instant::now();
    let e = d.meta_get(Table::Objects, b"k".to_vec()).await;
    assert!(
        matches!(e, Err(DriveError::Offline(_) | DriveError::NoAnswer(_))),
        "{e:?}"
    );
    let e = d.read_shard("bkt", &id(1), "part.1", 0, 10).await;
    assert!(
        matches!(e, Err(DriveError::Offline(_) | DriveError::NoAnswer(_))),
        "{e:?}"
    );
    // An upload stalls once the socket buffers fill, then fails as offline.
    let upload = async {
        let mut w = d.create_staged(&id(1), "part.1").await?;
        for _ in 0..1000 {
            w.write(Bytes::from(vec![7u8; 1 << 20])).await?;
        }
        w.finish().await
    };
    let e = tokio::time::timeout(Duration::from_secs(20), upload)
        .await
        .expect("upload gives up by itself");
    assert!(
        matches!(e, Err(DriveError::Offline(_) | DriveError::NoAnswer(_))),
        "{e:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_readers_survive_a_service_restart() {
    let p = pair().await;
    let data = pattern(200_000, 5);
    p.remote
        .write_shard_file("bkt", &id(6), "part.1", Bytes::from(data.clone()))
        .await
        .expect("write");
    let reader = p
        .remote
        .open_shard("bkt", &id(6), "part.1")
        .await
        .expect("open");
    assert_eq!(reader.read_at(10, 100).await.expect("read"), data[10..110]);
    // A new service (as after a node restart) knows none of the old handles.
    let endpoint = p.endpoint.clone();
    *p.server.slot.lock().expect("slot") = Arc::new(RpcService::new(
        vec![(endpoint, p.served.clone() as Arc<dyn Drive>)],
        key(),
    ));
    assert_eq!(
        reader.read_at(1000, 50).await.expect("reopened"),
        data[1000..1050]
    );
    let parts = reader
        .read_ranges(vec![0..5, 199_995..200_000])
        .await
        .expect("ranges");
    assert_eq!(parts, vec![data[0..5].to_vec(), data[199_995..].to_vec()]);
    // Once the file is gone, a reopen reports it missing.
    p.served.delete_data("bkt", &id(6)).await.expect("delete");
    *p.server.slot.lock().expect("slot") = Arc::new(RpcService::new(
        vec![(p.endpoint.clone(), p.served.clone() as Arc<dyn Drive>)],
        key(),
    ));
    let e = reader.read_at(0, 1).await;
    assert!(matches!(e, Err(DriveError::NotFound)), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_drive_on_a_live_node_is_offline() {
    let p = pair().await;
    let other = format!("http://{}/not-served", p.server.addr);
    let d = RemoteDrive::new(&other, RpcClient::new(key())).expect("remote drive");
    let e = d.meta_get(Table::Buckets, b"x".to_vec()).await;
    assert!(
        matches!(e, Err(DriveError::Offline(_) | DriveError::NoAnswer(_))),
        "{e:?}"
    );
}

/// One node call for several drives: each drive's answer is its own (a drive the node does
/// not serve fails alone), in request order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_call_answers_each_drive_on_its_own() {
    let p = pair().await;
    p.served
        .meta_apply(vec![put(Table::Objects, "bkt/k", b"{}")])
        .await
        .expect("record written");
    let other = format!("http://{}/not-served", p.server.addr);
    let unknown = RemoteDrive::new(&other, RpcClient::new(key())).expect("remote drive");
    let got = RemoteDrive::read_versions(&[&unknown, &p.remote], b"bkt/k".to_vec(), true).await;
    assert_eq!(got.len(), 2);
    assert!(
        matches!(&got[0], Err(DriveError::Offline(_))),
        "{:?}",
        got[0]
    );
    assert!(
        matches!(&got[1], Ok(Some(v)) if v.record == b"{}" && v.inline.is_none()),
        "{:?}",
        got[1]
    );
    let done = RemoteDrive::commit_versions(
        &[&p.remote, &unknown],
        vec![
            (None, vec![put(Table::Objects, "bkt/k", b"[]")]),
            (None, vec![put(Table::Objects, "bkt/k", b"[]")]),
        ],
        b"bkt/k".to_vec(),
    )
    .await;
    assert!(
        matches!(&done[0], Ok(Some(prev)) if prev == b"{}"),
        "{:?}",
        done[0]
    );
    assert!(
        matches!(&done[1], Err(DriveError::Offline(_))),
        "{:?}",
        done[1]
    );
    let now = p.served.meta_get(Table::Objects, b"bkt/k".to_vec()).await;
    assert!(matches!(now, Ok(Some(v)) if v == b"[]"));
}

/// Throughput of staged writes and reads, local vs remote (loopback). Prints MB/s.
/// Run with `cargo test --release -p cluster --test remote_drive -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput_local_vs_remote() {
    let p = pair().await;
    let h2 = RemoteDrive::new(
        &p.endpoint,
        RpcClient::with_transport(key(), RpcTimeouts::default(), Transport::Http2),
    )
    .expect("remote drive");
    let block = Bytes::from(pattern(256 * 1024 + 32, 3));
    let blocks = 256; // 64 MiB per file
    let size = block.len() * blocks;
    for (name, d) in [
        ("local", &p.local as &dyn Drive),
        ("remote http/1.1", &p.remote as &dyn Drive),
        ("remote http/2", &h2 as &dyn Drive),
    ] {
        let files = 4;
        let started = Instant::now();
        for f in 0..files {
            let mut w = d
                .create_staged(&id(20 + f), "part.1")
                .await
                .expect("create");
            for _ in 0..blocks {
                w.write(block.clone()).await.expect("write");
            }
            w.finish().await.expect("finish");
            d.commit(
                Some(DataMove {
                    tmp: id(20 + f),
                    bucket: "bkt".into(),
                    data_id: id(40 + f),
                }),
                vec![],
            )
            .await
            .expect("commit");
        }
        let w = started.elapsed();
        let started = Instant::now();
        for f in 0..files {
            let r = d
                .open_shard("bkt", &id(40 + f), "part.1")
                .await
                .expect("open");
            for b in 0..blocks {
                let v = r
                    .read_at((b * block.len()) as u64, block.len())
                    .await
                    .expect("read");
                assert_eq!(v.len(), block.len());
            }
        }
        let r = started.elapsed();
        let started = Instant::now();
        let reads = 4 * blocks;
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..8u64 {
            let r: Arc<dyn cluster::drive::ShardReader> = Arc::from(
                d.open_shard("bkt", &id(40 + (t % 4) as u8), "part.1")
                    .await
                    .expect("open"),
            );
            let len = block.len();
            tasks.spawn(async move {
                for b in 0..reads / 8 {
                    let at = ((b * 8 + t as usize) % blocks * len) as u64;
                    assert_eq!(r.read_at(at, len).await.expect("read").len(), len);
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.expect("reader task");
        }
        let par = started.elapsed();
        let started = Instant::now();
        let gets = 2000;
        for i in 0..gets {
            d.meta_get(Table::Objects, format!("k{i}").into_bytes())
                .await
                .expect("get");
        }
        let get = started.elapsed();
        let mb = (size * usize::from(files)) as f64 / 1e6;
        println!(
            "{name}: 8 concurrent readers {:.0} MB/s; meta_get {:.0} ops/s ({:.0} us each)",
            mb / par.as_secs_f64(),
            f64::from(gets) / get.as_secs_f64(),
            get.as_secs_f64() * 1e6 / f64::from(gets)
        );
        println!(
            "{name}: write {:.0} MB/s, read {:.0} MB/s ({} files of {} MiB, {} KiB blocks)",
            mb / w.as_secs_f64(),
            mb / r.as_secs_f64(),
            files,
            size >> 20,
            block.len() >> 10
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_the_drive_refuses_fails_with_the_drives_error() {
    let p = pair().await;
    // The served drive loses its format record (wiped or unmounted): it reports Offline.
    std::fs::remove_file(p.served_root.join(".tessera.sys/format.json")).expect("remove");
    let upload = async {
        let mut w = p.remote.create_staged(&id(1), "part.1").await?;
        for _ in 0..64 {
            w.write(Bytes::from(vec![1u8; 256 * 1024])).await?;
        }
        w.finish().await
    };
    let e = tokio::time::timeout(Duration::from_secs(20), upload)
        .await
        .expect("bounded");
    match e {
        Err(DriveError::Offline(m) | DriveError::NoAnswer(m)) => {
            assert!(m.contains(&p.endpoint), "{m}")
        }
        other => panic!("expected Offline, got {other:?}"),
    }
    let e = p.remote.meta_get(Table::Buckets, b"x".to_vec()).await;
    assert!(
        matches!(e, Err(DriveError::Offline(_) | DriveError::NoAnswer(_))),
        "{e:?}"
    );
    assert!(!p
        .served_root
        .join(".tessera.sys/tmp")
        .join(id(1).as_str())
        .exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_and_reads_through_one_client() {
    for transport in [Transport::Http1, Transport::Http2] {
        let p = pair_with(transport).await;
        let remote = Arc::new(p.remote.clone());
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..24u8 {
            let d = remote.clone();
            tasks.spawn(async move {
                let (tmp, data_id) = (id(100 + i), id(200 - i));
                let blocks: Vec<Vec<u8>> = (0..8).map(|b| pattern(50_000 + b * 11, i)).collect();
                let mut w = d.create_staged(&tmp, "part.1").await?;
                for b in &blocks {
                    w.write(Bytes::from(b.clone())).await?;
                }
                w.finish().await?;
                let key = format!("bkt/{i}");
                d.commit(
                    Some(DataMove {
                        tmp,
                        bucket: "bkt".into(),
                        data_id: data_id.clone(),
                    }),
                    vec![put(Table::Objects, &key, &[i])],
                )
                .await?;
                let whole = blocks.concat();
                let back = d
                    .read_shard("bkt", &data_id, "part.1", 0, whole.len())
                    .await?;
                let meta = d.meta_get(Table::Objects, key.into_bytes()).await?;
                Ok::<_, DriveError>(back == whole && meta == Some(vec![i]))
            });
        }
        let mut ok = 0;
        while let Some(r) = tokio::time::timeout(Duration::from_secs(60), tasks.join_next())
            .await
            .expect("bounded")
        {
            assert!(r.expect("task").expect("drive calls"), "{transport:?}");
            ok += 1;
        }
        assert_eq!(ok, 24);
        let all = p
            .served
            .meta_scan(Table::Objects, ScanRange::prefix(b"bkt/", 100))
            .await
            .expect("scan");
        assert_eq!(all.len(), 24);
    }
}

#[tokio::test]
async fn internode_connections_come_from_the_configured_source_ip() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let service = Arc::new(RpcService::new(Vec::new(), key()));
    let peers: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
    let seen = peers.clone();
    let server = tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            seen.lock().expect("peers").push(peer);
            let s = service.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let s = s.clone();
                    async move { Ok::<_, Infallible>(rpc::serve(&s, req).await) }
                });
                let b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = b.serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    let source: std::net::IpAddr = "127.0.0.2".parse().expect("ip");
    let client = RpcClient::with_options(
        key(),
        rpc::RpcOptions {
            source_ip: Some(source),
            ..rpc::RpcOptions::default()
        },
    );
    let drive = RemoteDrive::new(&format!("http://{addr}/nothing-here"), client).expect("drive");
    // The node answers (this drive is not its own): the connection was made.
    let r = drive.meta_get(Table::Objects, b"k".to_vec()).await;
    assert!(
        matches!(r, Err(DriveError::Offline(_) | DriveError::NoAnswer(_))),
        "{r:?}"
    );
    assert!(drive.is_online(), "the node answered");
    let peers = peers.lock().expect("peers").clone();
    assert!(!peers.is_empty(), "no connection seen");
    assert!(
        peers.iter().all(|p| p.ip() == source),
        "connections came from {peers:?}, not {source}"
    );
    server.abort();
}
