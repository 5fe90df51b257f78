//! Distributed key locks over real internode RPC sockets: nodes in one test process, each
//! with its own lock table served by `rpc::serve` on a 127.0.0.1 listener. Pins mutual
//! exclusion of holders on different nodes, that a dead holder's lease runs out (and not
//! before), that a node cut off from the majority cannot lock (`LockTimeout`), that a slow
//! node never delays a lock and its late grants are given back, that a node liveness knows
//! to be offline is not asked until it answers again, and that concurrent puts of
//! one key through different nodes leave one whole version on every drive (nothing for a
//! heal to repair) that every node reads alike. Fencing: a holder whose lock nodes stop
//! keeping its lease while its write (a PUT, or a part upload) is under way is refused the
//! commit (`LockLost`), and the old version stays.

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::dlock::{DistLocker, LockConfig, LockNode, LockTable};
use cluster::rpc::{self, RpcClient, RpcService, RpcTimeouts};
use cluster::{
    BytesBody, NodeConfig, NodeDrives, PutOptions, Store, StoreConfig, StoreError,
    WritePrecondition,
};
use common::rpc_node::*;
use common::*;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Lock tables only: `n` nodes, each serving its table (no drives).
struct LockNodes {
    tables: Vec<Arc<LockTable>>,
    bases: Vec<String>,
    servers: Vec<Option<RpcServer>>,
}

async fn lock_nodes(n: usize) -> LockNodes {
    let mut out = LockNodes {
        tables: Vec::new(),
        bases: Vec::new(),
        servers: Vec::new(),
    };
    for _ in 0..n {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        out.bases
            .push(format!("http://{}", l.local_addr().expect("local addr")));
        let service = RpcService::new(Vec::new(), internode_key());
        out.tables.push(service.lock_table());
        out.servers.push(Some(serve(l, service)));
    }
    out
}

fn client() -> RpcClient {
    RpcClient::with_timeouts(
        internode_key(),
        RpcTimeouts {
            connect: Duration::from_millis(500),
            unary: Duration::from_secs(2),
            stream_idle: Duration::from_secs(2),
        },
    )
}

impl LockNodes {
    /// Node `me`'s locker: its own table in-process, the others over RPC.
    fn locker(&self, me: usize, cfg: LockConfig) -> DistLocker {
        let c = client();
        let nodes = (0..self.tables.len())
            .map(|i| {
                if i == me {
                    LockNode::Local(self.tables[i].clone())
                } else {
                    LockNode::Remote {
                        base: self.bases[i].clone(),
                        client: c.clone(),
                    }
                }
            })
            .collect();
        DistLocker::new(nodes, cfg)
    }
}

fn cfg(lease_ms: u64, acquire_ms: u64) -> LockConfig {
    LockConfig {
        lease: Duration::from_millis(lease_ms),
        refresh: Duration::from_millis(lease_ms / 3),
        acquire_timeout: Duration::from_millis(acquire_ms),
        request_timeout: Duration::from_secs(1),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn holders_on_different_nodes_exclude_each_other() {
    let nodes = lock_nodes(4).await;
    let inside = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicUsize::new(0));
    const ROUNDS: usize = 15;
    let mut writers = Vec::new();
    for me in 0..3 {
        let locker = nodes.locker(me, cfg(5_000, 30_000));
        let (inside, counter) = (inside.clone(), counter.clone());
        writers.push(tokio::spawn(async move {
            for _ in 0..ROUNDS {
                let g = locker.lock("bucket/contended").await.expect("locked");
                assert!(
                    !inside.swap(true, Ordering::SeqCst),
                    "two holders inside at once"
                );
                let before = counter.load(Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                counter.store(before + 1, Ordering::SeqCst);
                inside.store(false, Ordering::SeqCst);
                drop(g);
            }
        }));
    }
    for w in tokio::time::timeout(Duration::from_secs(90), futures::future::join_all(writers))
        .await
        .expect("writers finish in time")
    {
        w.expect("writer ran");
    }
    assert_eq!(counter.load(Ordering::SeqCst), 3 * ROUNDS, "no lost update");

    // Uncontended round trip (grant on a majority of 4 over loopback), distinct keys.
    let locker = nodes.locker(0, cfg(5_000, 5_000));
    let n = 50;
    let t = Instant::now();
    for i in 0..n {
        let g = locker.lock(&format!("bucket/k{i}")).await.expect("locked");
        drop(g);
    }
    let per = t.elapsed() / n;
    println!("uncontended lock acquisition, 4 nodes: {per:?} per lock (distinct keys)");
    assert!(per < Duration::from_millis(500), "{per:?}");
    // One key again and again from one node (the peers' releases are still in flight).
    let t = Instant::now();
    for _ in 0..n {
        drop(locker.lock("bucket/again").await.expect("locked"));
    }
    let per = t.elapsed() / n;
    println!("same key re-locked from one node, 4 nodes: {per:?} per lock");
    assert!(per < Duration::from_millis(500), "{per:?}");
    // Every release arrives: the tables empty out.
    let deadline = Instant::now() + Duration::from_secs(5);
    while nodes.tables.iter().any(|t| t.held() > 0) {
        assert!(Instant::now() < deadline, "releases never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_holders_lease_expires_and_not_before() {
    let mut nodes = lock_nodes(3).await;
    let lease = 1_200;
    let holder = nodes.locker(0, cfg(lease, 2_000));
    let g = holder.lock("bucket/k").await.expect("holder locks");
    // Refreshes keep it past its lease: another node cannot take it meanwhile.
    let other_quick = nodes.locker(1, cfg(lease, 300));
    tokio::time::sleep(Duration::from_millis(2 * lease)).await;
    let early = other_quick.lock("bucket/k").await;
    assert!(
        matches!(early, Err(StoreError::LockTimeout { need: 2, .. })),
        "a refreshed lock was taken: {early:?}"
    );
    // The holder dies: no refresh, no release, and its node stops answering.
    g.abandon();
    nodes.servers[0] = None;
    let died = Instant::now();
    let early = other_quick.lock("bucket/k").await;
    assert!(early.is_err(), "taken before the lease ran out: {early:?}");
    let other = nodes.locker(1, cfg(lease, 10_000));
    let g2 = other.lock("bucket/k").await.expect("taken after the lease");
    let waited = died.elapsed();
    // The last refresh was at most lease/3 before the death.
    assert!(
        waited >= Duration::from_millis(lease * 2 / 3 - 100),
        "taken after only {waited:?}"
    );
    assert!(waited < Duration::from_millis(lease + 2_000), "{waited:?}");
    // A late release by the dead holder's id would free nothing: the new id holds it.
    assert!(!nodes.tables[1].release("bucket/k", "some-old-id"));
    assert!(nodes.tables[1].held() == 1 && nodes.tables[2].held() == 1);
    drop(g2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_alone_cannot_lock() {
    let mut nodes = lock_nodes(3).await;
    let alone = nodes.locker(0, cfg(5_000, 800));
    nodes.servers[1] = None;
    nodes.servers[2] = None;
    let t = Instant::now();
    let r = alone.lock("bucket/k").await;
    assert!(
        matches!(
            r,
            Err(StoreError::LockTimeout {
                granted: 1,
                need: 2
            })
        ),
        "{r:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // What it got on itself is given back.
    let deadline = Instant::now() + Duration::from_secs(3);
    while nodes.tables[0].held() > 0 {
        assert!(Instant::now() < deadline, "own grant never released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_node_never_delays_a_lock_and_its_late_grant_is_given_back() {
    let nodes = lock_nodes(2).await;
    // A third node that answers everything 600 ms late.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let slow_base = format!("http://{}", l.local_addr().expect("local addr"));
    let slow_service = RpcService::new(Vec::new(), internode_key());
    let slow_table = slow_service.lock_table();
    let _slow = serve_slowly(l, slow_service, Duration::from_millis(600));
    let c = client();
    let locker = DistLocker::new(
        vec![
            LockNode::Local(nodes.tables[0].clone()),
            LockNode::Remote {
                base: nodes.bases[1].clone(),
                client: c.clone(),
            },
            LockNode::Remote {
                base: slow_base,
                client: c,
            },
        ],
        cfg(5_000, 5_000),
    );
    for i in 0..5 {
        let t = Instant::now();
        let g = locker.lock(&format!("bucket/k{i}")).await.expect("locked");
        let took = t.elapsed();
        assert!(
            took < Duration::from_millis(400),
            "a majority answered at once, yet the lock took {took:?}"
        );
        drop(g);
    }
    // The slow node's grants arrive after each guard was dropped: each gives itself back.
    let deadline = Instant::now() + Duration::from_secs(5);
    while slow_table.held() > 0 || nodes.tables.iter().any(|t| t.held() > 0) {
        assert!(
            Instant::now() < deadline,
            "late grants were never released: slow node holds {}",
            slow_table.held()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_known_offline_is_skipped_until_it_answers_again() {
    let mut nodes = lock_nodes(3).await;
    let locker = nodes.locker(0, cfg(5_000, 5_000));
    let gone = nodes.bases[2].clone();
    let addr = gone.trim_start_matches("http://").to_owned();
    nodes.servers[2] = None;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The first lock that asks it (a round asks a majority first, which one depends on the
    // key) finds the node refusing: it is marked offline (for the drives too).
    let live = cluster::drive::liveness::NodeLiveness::for_node(&gone);
    for i in 0..32 {
        if !live.is_online() {
            break;
        }
        drop(
            locker
                .lock(&format!("bucket/a{i}"))
                .await
                .expect("majority of 3 still"),
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // (The majority answered first; the refusal lands a moment later.)
    let deadline = Instant::now() + Duration::from_secs(3);
    while live.is_online() {
        assert!(
            Instant::now() < deadline,
            "a refusing lock node is marked offline"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Later locks do not ask it at all; they still need and get a majority.
    for i in 0..10 {
        let t = Instant::now();
        drop(locker.lock(&format!("bucket/b{i}")).await.expect("locked"));
        assert!(
            t.elapsed() < Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
    }
    // Only one other node left: no majority, and the lock says so fast with LockTimeout.
    nodes.servers[1] = None;
    // Dropping the server aborts its tasks asynchronously: let a kept-alive connection end.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = Instant::now();
    let r = locker.lock("bucket/c").await;
    assert!(
        matches!(r, Err(StoreError::LockTimeout { need: 2, .. })),
        "{r:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // Node 2 comes back on its address: the probe sees it, and it grants again.
    let l = tokio::net::TcpListener::bind(&addr).await.expect("rebind");
    let service = RpcService::new(Vec::new(), internode_key());
    let table = service.lock_table();
    let _back = serve(l, service);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !live.is_online() {
        assert!(Instant::now() < deadline, "never probed back online");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let g = locker.lock("bucket/d").await.expect("majority again");
    assert_eq!(table.held(), 1, "the returned node was asked and granted");
    drop(g);
}

const NODES: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_through_different_nodes_leave_one_whole_version() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (listeners, ports) = common::rpc_node::listeners(NODES).await;
    let mut endpoints = vec![String::new(); 2 * NODES];
    for n in 0..NODES {
        for d in 0..2 {
            let path = dir.path().join(format!("node{n}")).join(format!("d{d}"));
            endpoints[d * NODES + n] = format!("http://127.0.0.1:{}{}", ports[n], path.display());
        }
    }
    let cfg = StoreConfig::new(endpoints);
    let mut opening = Vec::new();
    let mut servers = Vec::new();
    for (n, listener) in listeners.into_iter().enumerate() {
        let node = NodeDrives::prepare(
            &cfg,
            NodeConfig {
                local_addresses: Some(vec![("127.0.0.1".to_owned(), ports[n])]),
                internode_key: Some(internode_key()),
                startup_wait: Duration::from_secs(20),
                startup_poll: Duration::from_millis(50),
                ..NodeConfig::default()
            },
        )
        .expect("node prepared");
        servers.push(serve(
            listener,
            RpcService::new(node.served(), internode_key()),
        ));
        let cfg = cfg.clone();
        opening.push(tokio::spawn(Store::open_on(cfg, node)));
    }
    let stores: Vec<Store> =
        tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(opening))
            .await
            .expect("startup in time")
            .into_iter()
            .map(|s| s.expect("task ran").expect("node opens"))
            .collect();
    let stores = Arc::new(stores);
    let b = bucket("contended");
    stores[0].make_bucket(&b).await.expect("bucket made");
    let payloads: Vec<Vec<u8>> = (0..NODES)
        .map(|n| data(40_000 + n * 7_000, n as u64 + 1))
        .collect();
    for round in 0..10 {
        let puts = (0..NODES).map(|n| {
            let (stores, b, p) = (stores.clone(), b.clone(), payloads[n].clone());
            tokio::spawn(async move {
                put(&stores[n], &b, "same", &p).await;
            })
        });
        tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(puts))
            .await
            .expect("puts finish in time")
            .into_iter()
            .for_each(|r| r.expect("put task ran"));
        // One version on every drive: nothing for a heal to repair.
        let report = stores[round % NODES]
            .heal_object(&b, &key("same"))
            .await
            .expect("heal check");
        assert!(
            report.was_clean(),
            "round {round}: drives disagree: {report:?}"
        );
        let first = get(&stores[0], &b, "same").await.expect("readable");
        assert!(payloads.contains(&first), "round {round}: a torn object");
        let etag = stores[0]
            .head_object(&b, &key("same"))
            .await
            .expect("head")
            .etag;
        for s in stores.iter() {
            assert_eq!(get(s, &b, "same").await.as_deref(), Ok(&first[..]));
            assert_eq!(
                s.head_object(&b, &key("same")).await.expect("head").etag,
                etag
            );
        }
    }
    drop(servers);
}

/// Serves like [`serve`], but once `fence.armed` is set and this node has granted a lock,
/// the next metadata read turns its lock service off (every lock call answered 503: the node
/// is alive, but no longer keeps any lease) and is itself answered only after `read_delay`.
fn serve_fencing(
    listener: tokio::net::TcpListener,
    service: RpcService,
    fence: Arc<Fence>,
) -> RpcServer {
    let service = Arc::new(service);
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            let (s, fence) = (service.clone(), fence.clone());
            conns.spawn(async move {
                let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let (s, fence) = (s.clone(), fence.clone());
                    async move {
                        let path = req.uri().path().to_owned();
                        let armed = fence.armed.load(Ordering::SeqCst);
                        if path.contains("/lock_") {
                            if fence.locks_down.load(Ordering::SeqCst) {
                                let mut r = http::Response::new(rpc::RpcResponseBody::default());
                                *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                                return Ok::<_, Infallible>(r);
                            }
                            if armed && path.ends_with("/lock_grant") {
                                fence.granted.store(true, Ordering::SeqCst);
                            }
                        } else if armed
                            && fence.granted.load(Ordering::SeqCst)
                            && (path.ends_with("/meta_get") || path.ends_with("/read_versions"))
                        {
                            fence.locks_down.store(true, Ordering::SeqCst);
                            tokio::time::sleep(fence.read_delay).await;
                        }
                        Ok::<_, Infallible>(rpc::serve(&s, req).await)
                    }
                });
                let b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = b.serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    RpcServer { task }
}

/// What [`serve_fencing`] nodes share.
#[derive(Default)]
struct Fence {
    armed: AtomicBool,
    granted: AtomicBool,
    locks_down: AtomicBool,
    read_delay: Duration,
}

/// Three nodes over real RPC for the fencing tests: node 0 holds 4 of the 6 drives (EC 4+2:
/// write quorum 4), nodes 1 and 2 one each and serve through [`serve_fencing`]. Node 0 alone
/// could commit, but it needs a majority of the three nodes for the key lock.
async fn fenced_cluster(fence: &Arc<Fence>) -> (tempfile::TempDir, Vec<Store>, Vec<RpcServer>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (listeners, ports) = common::rpc_node::listeners(3).await;
    let homes = [0, 0, 0, 0, 1, 2];
    let endpoints: Vec<String> = homes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let path = dir.path().join(format!("node{n}")).join(format!("d{i}"));
            format!("http://127.0.0.1:{}{}", ports[n], path.display())
        })
        .collect();
    let mut cfg = StoreConfig::new(endpoints);
    cfg.parity = Some(2);
    let lease = Duration::from_millis(900);
    let mut opening = Vec::new();
    let mut servers = Vec::new();
    for (n, listener) in listeners.into_iter().enumerate() {
        let node = NodeDrives::prepare(
            &cfg,
            NodeConfig {
                local_addresses: Some(vec![("127.0.0.1".to_owned(), ports[n])]),
                internode_key: Some(internode_key()),
                startup_wait: Duration::from_secs(20),
                startup_poll: Duration::from_millis(50),
                locks: LockConfig {
                    lease,
                    refresh: lease / 3,
                    acquire_timeout: Duration::from_secs(5),
                    request_timeout: Duration::from_millis(500),
                },
                ..NodeConfig::default()
            },
        )
        .expect("node prepared");
        let service = RpcService::new(node.served(), internode_key());
        servers.push(if n == 0 {
            serve(listener, service)
        } else {
            serve_fencing(listener, service, fence.clone())
        });
        let cfg = cfg.clone();
        opening.push(tokio::spawn(Store::open_on(cfg, node)));
    }
    let stores: Vec<Store> =
        tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(opening))
            .await
            .expect("startup in time")
            .into_iter()
            .map(|s| s.expect("task ran").expect("node opens"))
            .collect();
    (dir, stores, servers)
}

fn fence() -> Arc<Fence> {
    Arc::new(Fence {
        read_delay: Duration::from_millis(1_500),
        ..Fence::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writer_whose_lock_nodes_go_away_mid_write_is_refused_the_commit() {
    let fence = fence();
    let (_dir, stores, servers) = fenced_cluster(&fence).await;
    let b = bucket("fenced");
    stores[0].make_bucket(&b).await.expect("bucket made");
    let old = data(20_000, 1);
    let etag = put(&stores[0], &b, "k", &old).await.etag;

    // The next write's lock is granted; while its precondition is read, nodes 1 and 2 stop
    // keeping leases (their reads answer late), so the holder's refresh reaches no majority.
    fence.armed.store(true, Ordering::SeqCst);
    let t = Instant::now();
    let r = stores[0]
        .put_object(
            &b,
            &key("k"),
            BytesBody::chunked(data(20_000, 2), 10_000),
            PutOptions {
                precondition: Some(WritePrecondition::IfMatch(etag.clone())),
                ..PutOptions::default()
            },
        )
        .await;
    eprintln!("fenced write answered after {:?}: {r:?}", t.elapsed());
    assert!(
        fence.locks_down.load(Ordering::SeqCst),
        "the lock nodes never went away mid-write"
    );
    assert!(
        matches!(r, Err(StoreError::LockLost { .. })),
        "a write whose lock was lost committed anyway: {r:?}"
    );

    // The lock nodes are back: the old version is what every node reads.
    fence.armed.store(false, Ordering::SeqCst);
    fence.locks_down.store(false, Ordering::SeqCst);
    for s in &stores {
        assert_eq!(get(s, &b, "k").await.as_deref(), Ok(&old[..]));
        assert_eq!(s.head_object(&b, &key("k")).await.expect("head").etag, etag);
    }
    drop(stores);
    drop(servers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_part_upload_whose_lock_nodes_go_away_mid_write_is_refused_the_commit() {
    let fence = fence();
    let (_dir, stores, servers) = fenced_cluster(&fence).await;
    let b = bucket("fenced-parts");
    stores[0].make_bucket(&b).await.expect("bucket made");
    let id = stores[0]
        .create_multipart(&b, &key("k"), Default::default(), None)
        .await
        .expect("upload created");
    let first = stores[0]
        .upload_part(
            &b,
            &key("k"),
            &id,
            1,
            BytesBody::chunked(data(20_000, 1), 10_000),
            Default::default(),
        )
        .await
        .expect("part 1 uploaded");

    // The re-upload of part 1 is granted its lock; while it checks the upload, nodes 1 and 2
    // stop keeping leases, so the holder's refresh reaches no majority.
    fence.armed.store(true, Ordering::SeqCst);
    let r = stores[0]
        .upload_part(
            &b,
            &key("k"),
            &id,
            1,
            BytesBody::chunked(data(20_000, 2), 10_000),
            Default::default(),
        )
        .await;
    assert!(
        fence.locks_down.load(Ordering::SeqCst),
        "the lock nodes never went away mid-write"
    );
    assert!(
        matches!(r, Err(StoreError::LockLost { .. })),
        "a part upload whose lock was lost committed anyway: {r:?}"
    );

    // The lock nodes are back: part 1 is still the first upload, on every node.
    fence.armed.store(false, Ordering::SeqCst);
    fence.locks_down.store(false, Ordering::SeqCst);
    for s in &stores {
        let page = s
            .list_parts(&b, &key("k"), &id, 0, 1000)
            .await
            .expect("parts listed");
        let etags: Vec<&str> = page.parts.iter().map(|p| p.etag.as_str()).collect();
        assert_eq!(etags, [first.etag.as_str()]);
    }
    drop(stores);
    drop(servers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_holder_knows_when_its_lock_is_lost() {
    let mut nodes = lock_nodes(3).await;
    let lease = 600;
    let holder = nodes.locker(0, cfg(lease, 2_000));
    let g = holder.lock("bucket/k").await.expect("locked");
    // Refreshed on a majority: held well past its first lease.
    tokio::time::sleep(Duration::from_millis(2 * lease)).await;
    assert!(g.lease().is_held(), "a refreshed lock is held");
    assert!(g.ensure_held().is_ok());
    // The other nodes go away: the next refresh reaches no majority.
    nodes.servers[1] = None;
    nodes.servers[2] = None;
    let gone = Instant::now();
    while g.lease().is_held() {
        assert!(
            gone.elapsed() < Duration::from_millis(lease + 1_000),
            "still held {:?} after the majority went away",
            gone.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "lock known lost {:?} after its majority went away",
        gone.elapsed()
    );
    assert!(
        gone.elapsed() <= Duration::from_millis(lease),
        "lost only after {:?}: a lease may have run out on the nodes first",
        gone.elapsed()
    );
    assert!(matches!(
        g.ensure_held(),
        Err(StoreError::LockLost { resource }) if resource == "bucket/k"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_round_asks_only_a_majority_when_it_grants_at_once() {
    let nodes = lock_nodes(4).await;
    let locker = nodes.locker(0, cfg(5_000, 5_000));
    let (mut exact, mut chosen) = (0, [0usize; 4]);
    const KEYS: usize = 20;
    for i in 0..KEYS {
        let g = locker.lock(&format!("bucket/m{i}")).await.expect("locked");
        let holding: Vec<bool> = nodes.tables.iter().map(|t| t.held() == 1).collect();
        let n = holding.iter().filter(|h| **h).count();
        assert!(n >= 3, "held on {n} of 4 nodes: {holding:?}");
        assert!(holding[0], "this node's own table is always asked");
        exact += usize::from(n == 3);
        for (c, h) in chosen.iter_mut().zip(&holding) {
            *c += usize::from(*h);
        }
        drop(g);
        // Released where it was granted (the fourth node was never asked, or gives back).
        let deadline = Instant::now() + Duration::from_secs(3);
        while nodes.tables.iter().any(|t| t.held() > 0) {
            assert!(Instant::now() < deadline, "a grant was never released");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    println!("{exact} of {KEYS} locks asked only a majority; per node: {chosen:?}");
    // Only a slow answer (over the hedge) makes a round ask the fourth node.
    assert!(exact >= KEYS / 2, "{exact} of {KEYS}");
    // Which peers make the majority depends on the key.
    assert!(chosen[1..].iter().all(|&c| c > 0), "{chosen:?}");
}
