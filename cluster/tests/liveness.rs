//! Liveness of remote drives over real 127.0.0.1 sockets: a "gray" node (accepts TCP,
//! never answers) costs the first call its timeout and every following call almost nothing
//! (`Offline` at once, no network); when the node answers again a background probe brings
//! the drive back online; application errors (NotFound) never mark a node offline. The
//! heartbeat finds a node that froze while a call to it was in flight, and that call fails
//! within a few probe intervals instead of its own (long) timeout; a node that answers
//! slowly, but answers, is never marked offline.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::drive::{Drive, LocalDrive, RemoteDrive};
use cluster::format::{FormatRecord, FORMAT_VERSION};
use cluster::metastore::Table;
use cluster::names::DataId;
use cluster::rpc::{self, InternodeKey, RpcClient, RpcService, RpcTimeouts};
use cluster::DriveError;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

const UNARY: Duration = Duration::from_millis(400);

fn key() -> InternodeKey {
    InternodeKey::derive("root-access", "root-secret")
}

fn open_local(root: &Path, endpoint: &str) -> LocalDrive {
    let f = FormatRecord {
        version: FORMAT_VERSION,
        deployment_id: "dep-test".into(),
        drive_id: "drive-0".into(),
        set_index: 0,
        slot: 0,
        sets: 1,
        drives_per_set: 1,
    };
    LocalDrive::write_format(root, &f).expect("format written");
    LocalDrive::open(root, endpoint.to_owned(), f).expect("drive opens")
}

/// A node that is either gray (accepts connections and never answers them) or serving.
struct Node {
    addr: SocketAddr,
    gray: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start_node(gray: bool) -> (Node, String) {
    start_node_with(gray, Duration::ZERO).await
}

/// A node as [`start_node`] makes it, whose every answer waits `delay` first (a slow node).
async fn start_node_with(gray: bool, delay: Duration) -> (Node, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let endpoint = format!("http://{addr}/d0");
    let drive = Arc::new(open_local(dir.path(), &endpoint));
    let service = Arc::new(RpcService::new(
        vec![(endpoint.clone(), drive as Arc<dyn Drive>)],
        key(),
    ));
    let gray = Arc::new(AtomicBool::new(gray));
    let g = gray.clone();
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            if g.load(Ordering::SeqCst) {
                // Hold the connection open and say nothing (a SIGSTOPped node).
                conns.spawn(async move {
                    let _held = stream;
                    std::future::pending::<()>().await;
                });
                continue;
            }
            let s = service.clone();
            conns.spawn(async move {
                let svc = service_fn(move |req| {
                    let s = s.clone();
                    async move {
                        tokio::time::sleep(delay).await;
                        Ok::<_, Infallible>(rpc::serve(&s, req).await)
                    }
                });
                let b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = b.serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    (
        Node {
            addr,
            gray,
            task,
            _dir: dir,
        },
        endpoint,
    )
}

fn client() -> RpcClient {
    RpcClient::with_timeouts(
        key(),
        RpcTimeouts {
            connect: Duration::from_millis(200),
            unary: UNARY,
            stream_idle: UNARY,
        },
    )
}

fn id() -> DataId {
    DataId::parse(&format!("{:032x}", 0x1234_5678u128)).expect("valid data id")
}

#[tokio::test]
async fn gray_node_fails_fast_after_first_timeout_and_comes_back() {
    let (node, endpoint) = start_node(true).await;
    let drive = RemoteDrive::new(&endpoint, client()).expect("remote drive");
    assert!(drive.is_online(), "a new drive starts online");

    // The first call waits out the timeout.
    let t = Instant::now();
    let r = drive.meta_get(Table::Objects, b"k".to_vec()).await;
    let first = t.elapsed();
    assert!(
        matches!(r, Err(DriveError::Offline(_) | DriveError::NoAnswer(_))),
        "got {r:?}"
    );
    assert!(
        first >= UNARY,
        "first call failed after {first:?}, before the timeout"
    );
    assert!(!drive.is_online(), "a silent node is marked offline");
    let t = Instant::now();
    let info = drive.info().await;
    assert!(
        matches!(info, Err(DriveError::Offline(_) | DriveError::NoAnswer(_))),
        "got {info:?}"
    );
    assert!(
        t.elapsed() < UNARY,
        "info of an offline node takes one brief probe at most: {:?}",
        t.elapsed()
    );

    // Every following call fails at once, without the network.
    let mut worst = Duration::ZERO;
    let mut total = Duration::ZERO;
    for i in 0..20 {
        let t = Instant::now();
        let r = match i % 3 {
            0 => drive
                .meta_get(Table::Objects, b"k".to_vec())
                .await
                .map(drop),
            1 => drive
                .read_shard("bucket", &id(), "part.1", 0, 10)
                .await
                .map(drop),
            _ => drive.create_staged(&id(), "part.1").await.map(drop),
        };
        let took = t.elapsed();
        assert!(
            matches!(r, Err(DriveError::Offline(_) | DriveError::NoAnswer(_))),
            "call {i}: {r:?}"
        );
        worst = worst.max(took);
        total += took;
    }
    eprintln!(
        "offline: first call {first:?} (timeout {UNARY:?}); next 20 calls: worst {worst:?}, mean {:?}",
        total / 20
    );
    assert!(
        worst < Duration::from_millis(50) && worst * 8 < UNARY,
        "an offline call took {worst:?} (timeout {UNARY:?})"
    );

    // Another drive of the same node shares the state.
    let sibling = RemoteDrive::new(&format!("http://{}/d1", node.addr), client()).expect("drive");
    assert!(!sibling.is_online(), "drives of one node share liveness");

    // The node answers again: a probe brings the drive back within a few intervals.
    node.gray.store(false, Ordering::SeqCst);
    let t = Instant::now();
    while !drive.is_online() {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "still offline {:?} after the node came back",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "back online {:?} after the node answered again",
        t.elapsed()
    );
    let got = drive
        .meta_get(Table::Objects, b"k".to_vec())
        .await
        .expect("calls succeed again");
    assert_eq!(got, None);
    assert!(drive.info().await.expect("info").online);
}

#[tokio::test]
async fn refused_connection_marks_offline_too() {
    let (node, endpoint) = start_node(false).await;
    let drive = RemoteDrive::new(&endpoint, client()).expect("remote drive");
    drive.info().await.expect("node answers");
    drop(node);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = drive.meta_get(Table::Objects, b"k".to_vec()).await;
    assert!(
        matches!(r, Err(DriveError::Offline(_) | DriveError::NoAnswer(_))),
        "got {r:?}"
    );
    assert!(
        !drive.is_online(),
        "a refusing node is marked offline: {r:?}"
    );
    let t = Instant::now();
    let r = drive.meta_get(Table::Objects, b"k".to_vec()).await;
    assert!(
        matches!(r, Err(DriveError::Offline(_) | DriveError::NoAnswer(_))),
        "got {r:?}"
    );
    assert!(t.elapsed() < Duration::from_millis(50));
}

#[tokio::test]
async fn application_errors_keep_the_node_online() {
    let (_node, endpoint) = start_node(false).await;
    let drive = RemoteDrive::new(&endpoint, client()).expect("remote drive");
    for _ in 0..5 {
        let r = drive.read_shard("bucket", &id(), "part.1", 0, 10).await;
        assert!(matches!(r, Err(DriveError::NotFound)), "got {r:?}");
        assert!(drive.is_online(), "NotFound must not mark the node offline");
    }
    let r = drive.read_shard("bucket", &id(), "../x", 0, 10).await;
    assert!(matches!(r, Err(DriveError::Invalid(_))), "got {r:?}");
    assert!(drive.is_online(), "Invalid must not mark the node offline");
    assert!(drive.info().await.expect("info").online);

    // A drive the live node does not serve answers Offline, but the node answered: its
    // other drives stay online.
    let addr = endpoint
        .trim_start_matches("http://")
        .trim_end_matches("/d0")
        .to_owned();
    let unknown = RemoteDrive::new(&format!("http://{addr}/nope"), client()).expect("drive");
    let r = unknown.meta_get(Table::Objects, b"k".to_vec()).await;
    assert!(
        matches!(r, Err(DriveError::Offline(_) | DriveError::NoAnswer(_))),
        "got {r:?}"
    );
    assert!(
        unknown.is_online() && drive.is_online(),
        "the node answered"
    );
    assert_eq!(
        drive
            .meta_get(Table::Objects, b"k".to_vec())
            .await
            .expect("still served"),
        None
    );
}

#[tokio::test]
async fn subscribers_hear_a_node_go_offline_and_come_back() {
    use cluster::drive::liveness::{Liveness, NodeEvent};
    let (node, endpoint) = start_node(false).await;
    let drive = RemoteDrive::new(&endpoint, client()).expect("remote drive");
    let sibling = RemoteDrive::new(&format!("http://{}/d1", node.addr), client()).expect("drive");
    let view = Liveness::new(vec![drive.liveness(), sibling.liveness()]);
    let name = node.addr.to_string();
    assert_eq!(view.nodes().len(), 1, "drives of one node are one node");
    assert_eq!(view.is_online(&name), Some(true));
    let mut events = view.subscribe();

    node.gray.store(true, Ordering::SeqCst);
    let r = drive.meta_get(Table::Objects, b"k".to_vec()).await;
    assert!(
        matches!(r, Err(DriveError::Offline(_) | DriveError::NoAnswer(_))),
        "got {r:?}"
    );
    let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event within 5 s")
        .expect("channel open");
    assert_eq!(ev, NodeEvent::Offline(name.clone()));
    assert_eq!(view.is_online(&name), Some(false));

    node.gray.store(false, Ordering::SeqCst);
    let ev = tokio::time::timeout(Duration::from_secs(15), events.recv())
        .await
        .expect("the probe brings it back within 15 s")
        .expect("channel open");
    assert_eq!(ev, NodeEvent::Online(name.clone()));
    assert_eq!(view.is_online(&name), Some(true));
    assert!(
        events.try_recv().is_err(),
        "one event per transition, not per drive"
    );
}

#[tokio::test]
async fn a_node_that_answers_with_a_refusal_stays_online() {
    let (_node, endpoint) = start_node(false).await;
    // Another key: the node answers 403 to every call. That is an answer, not silence.
    let stranger = RpcClient::with_timeouts(
        InternodeKey::derive("root-access", "another-secret"),
        RpcTimeouts {
            connect: Duration::from_millis(200),
            unary: UNARY,
            stream_idle: UNARY,
        },
    );
    let drive = RemoteDrive::new(&endpoint, stranger).expect("remote drive");
    for _ in 0..3 {
        let r = drive.meta_get(Table::Objects, b"k".to_vec()).await;
        match r {
            Err(DriveError::Offline(m) | DriveError::NoAnswer(m)) => {
                assert!(m.contains("authentication"), "{m}")
            }
            other => panic!("expected Offline (refused), got {other:?}"),
        }
        assert!(drive.is_online(), "a refusing node answered: not offline");
    }
}

/// The probe interval the heartbeat tests use (process-wide; the other tests only get
/// faster backoff from it).
const INTERVAL: Duration = Duration::from_millis(300);

#[tokio::test]
async fn a_frozen_node_is_found_while_a_call_waits_and_the_call_fails_at_once() {
    use cluster::drive::liveness::{heartbeat_timeout, set_probe_max, HEARTBEAT_FAILURES};
    set_probe_max(INTERVAL);
    let (node, endpoint) = start_node(false).await;
    // A long unary timeout: only liveness can end the frozen call early.
    let patient = RpcClient::with_timeouts(
        key(),
        RpcTimeouts {
            connect: Duration::from_millis(200),
            unary: Duration::from_secs(30),
            stream_idle: Duration::from_secs(30),
        },
    );
    // The node is frozen (SIGSTOP) before this process ever reached it (a pooled
    // connection would still be served): its socket accepts, nothing answers.
    node.gray.store(true, Ordering::SeqCst);
    let drive = RemoteDrive::new(&endpoint, patient).expect("remote drive");
    // The first call starts the node's heartbeat, and is still in flight when it fires.
    let t = Instant::now();
    let r = drive.meta_get(Table::Objects, b"k".to_vec()).await;
    let took = t.elapsed();
    assert!(
        matches!(r, Err(DriveError::Offline(_) | DriveError::NoAnswer(_))),
        "got {r:?}"
    );
    assert!(!drive.is_online(), "the frozen node is marked offline");
    // At most: one interval (x1.25 jitter) plus the probes that must go unanswered.
    let bound = INTERVAL * 2 + heartbeat_timeout(INTERVAL) * HEARTBEAT_FAILURES;
    eprintln!(
        "call in flight to a frozen node failed after {took:?} (bound {bound:?}, unary 30 s)"
    );
    assert!(took < bound + Duration::from_secs(1), "{took:?}");
    // Later calls do not wait at all.
    let t = Instant::now();
    let r = drive.meta_get(Table::Objects, b"k".to_vec()).await;
    assert!(
        matches!(r, Err(DriveError::Offline(_) | DriveError::NoAnswer(_))),
        "got {r:?}"
    );
    assert!(t.elapsed() < Duration::from_millis(50), "{:?}", t.elapsed());
    // It thaws (SIGCONT): back online within a few intervals.
    node.gray.store(false, Ordering::SeqCst);
    let t = Instant::now();
    while !drive.is_online() {
        assert!(t.elapsed() < Duration::from_secs(10), "never back online");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_slow_node_that_answers_never_flaps() {
    use cluster::drive::liveness::{set_probe_max, Liveness};
    set_probe_max(INTERVAL);
    // Every answer takes 700 ms: slow, far slower than usual, but under the probe limit.
    let (_node, endpoint) = start_node_with(false, Duration::from_millis(700)).await;
    let patient = RpcClient::with_timeouts(
        key(),
        RpcTimeouts {
            connect: Duration::from_millis(200),
            unary: Duration::from_secs(5),
            stream_idle: Duration::from_secs(5),
        },
    );
    let drive = RemoteDrive::new(&endpoint, patient).expect("remote drive");
    let view = Liveness::new(vec![drive.liveness()]);
    let mut events = view.subscribe();
    drive.info().await.expect("node answers");
    // Ten probe intervals of heartbeats and calls.
    let t = Instant::now();
    while t.elapsed() < INTERVAL * 10 {
        let r = drive.meta_get(Table::Objects, b"k".to_vec()).await;
        assert_eq!(r.expect("a slow answer is an answer"), None);
    }
    assert!(drive.is_online(), "a slow node was marked offline");
    assert!(events.try_recv().is_err(), "no transition at all");
}
