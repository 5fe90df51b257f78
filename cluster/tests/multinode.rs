//! Several nodes, one store: four "nodes" in one test process, each with two drives of its
//! own served over internode RPC on a real 127.0.0.1 socket, and its own `Store` opened on
//! the full 8-endpoint URL list (EC 4+4). Pins that the nodes agree on one deployment at
//! startup, that any node reads what another wrote (and sees its deletes), that a node whose
//! drives belong to another deployment is refused by name, and that reads and writes go on
//! with one node's RPC server gone (and reads, not writes, with two gone), and that a
//! restarted node rejoins and reads what was written without it.

mod common;

use std::time::Duration;

use cluster::drive::liveness::NodeEvent;
use cluster::drive::{Drive, RemoteDrive};
use cluster::format::{FormatRecord, FORMAT_VERSION};
use cluster::rpc::{RpcClient, RpcService};
use cluster::{
    drive::LocalDrive, ListQuery, NodeConfig, NodeDrives, Store, StoreConfig, StoreError,
};
use common::rpc_node::*;
use common::*;

const NODES: usize = 4;

/// How the nodes tell each other apart on one machine.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Addressing {
    /// 127.0.0.1:P1 .. 127.0.0.1:P4
    Ports,
    /// 127.0.0.1:P .. 127.0.0.4:P
    Hosts,
}

struct Cluster {
    _dir: tempfile::TempDir,
    endpoints: Vec<String>,
    hosts: Vec<String>,
    ports: Vec<u16>,
    stores: Vec<Store>,
    servers: Vec<Option<RpcServer>>,
}

fn node_config(host: &str, port: u16) -> NodeConfig {
    NodeConfig {
        local_addresses: Some(vec![(host.to_owned(), port)]),
        internode_key: Some(internode_key()),
        startup_wait: Duration::from_secs(20),
        startup_poll: Duration::from_millis(50),
        locks: cluster::dlock::LockConfig {
            acquire_timeout: Duration::from_secs(3),
            ..Default::default()
        },
        ..NodeConfig::default()
    }
}

/// Drive `d` (0 or 1) of node `n`, MinIO order: the node varies fastest.
fn endpoint_index(node: usize, d: usize) -> usize {
    d * NODES + node
}

/// Binds every node's listener; with [`Addressing::Hosts`] all on one port number.
async fn bind_all(addressing: Addressing) -> Vec<tokio::net::TcpListener> {
    if addressing == Addressing::Ports {
        let mut listeners = Vec::new();
        for _ in 0..NODES {
            listeners.push(
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind"),
            );
        }
        return listeners;
    }
    for _attempt in 0..20 {
        let first = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = first.local_addr().expect("local addr").port();
        let mut listeners = vec![first];
        for n in 1..NODES {
            match tokio::net::TcpListener::bind((format!("127.0.0.{}", n + 1), port)).await {
                Ok(l) => listeners.push(l),
                Err(_) => break,
            }
        }
        if listeners.len() == NODES {
            return listeners;
        }
    }
    panic!("no port free on 127.0.0.1-4 after 20 attempts");
}

/// Binds every node's listener first (the endpoint list names the ports), serves each
/// node's drives, then opens the four stores concurrently; node `late` (if any) only
/// after the others have been waiting for it for a while.
async fn start_cluster_with(addressing: Addressing, late: Option<usize>) -> Cluster {
    let dir = tempfile::tempdir().expect("temp dir");
    let listeners = bind_all(addressing).await;
    let (hosts, ports): (Vec<String>, Vec<u16>) = listeners
        .iter()
        .map(|l| {
            let a = l.local_addr().expect("local addr");
            (a.ip().to_string(), a.port())
        })
        .unzip();
    let mut endpoints = vec![String::new(); 2 * NODES];
    for n in 0..NODES {
        for d in 0..2 {
            let path = dir.path().join(format!("node{n}")).join(format!("d{d}"));
            endpoints[endpoint_index(n, d)] =
                format!("http://{}:{}{}", hosts[n], ports[n], path.display());
        }
    }
    let cfg = StoreConfig::new(endpoints.clone());
    let mut opening = Vec::new();
    let mut servers = Vec::new();
    for (n, listener) in listeners.into_iter().enumerate() {
        let node =
            NodeDrives::prepare(&cfg, node_config(&hosts[n], ports[n])).expect("node prepared");
        assert_eq!(node.served().len(), 2, "node {n} serves its two drives");
        let service = RpcService::new(node.served(), internode_key());
        let cfg = cfg.clone();
        let delay = if late == Some(n) {
            Duration::from_millis(800)
        } else {
            Duration::ZERO
        };
        let (server_tx, server_rx) = tokio::sync::oneshot::channel();
        servers.push(server_rx);
        opening.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = server_tx.send(serve(listener, service));
            Store::open_on(cfg, node).await
        }));
    }
    let opened = tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(opening))
        .await
        .expect("startup finishes in time");
    let stores: Vec<Store> = opened
        .into_iter()
        .map(|s| s.expect("task ran").expect("node opens"))
        .collect();
    let mut running = Vec::new();
    for rx in servers {
        running.push(Some(rx.await.expect("server started")));
    }
    Cluster {
        _dir: dir,
        endpoints,
        hosts,
        ports,
        stores,
        servers: running,
    }
}

async fn start_cluster() -> Cluster {
    start_cluster_with(Addressing::Ports, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_nodes_share_one_namespace() {
    let c = start_cluster().await;
    let layout = c.stores[0].layout();
    assert_eq!((layout.data_shards, layout.parity_shards), (4, 4));
    for s in &c.stores {
        assert_eq!(
            s.layout().deployment_id,
            layout.deployment_id,
            "one deployment"
        );
        assert_eq!(s.layout().drives, c.endpoints);
        assert!(s.offline_drives().await.is_empty());
        assert_eq!(s.local_drives().len(), 2);
    }

    let b = bucket("shared");
    c.stores[0].make_bucket(&b).await.expect("bucket made on A");
    let small = data(1000, 1);
    let large = data(3 << 20, 2);
    let ia = put(&c.stores[0], &b, "small", &small).await;
    let ib = put(&c.stores[0], &b, "dir/large", &large).await;
    for s in &c.stores[1..] {
        assert_eq!(get(s, &b, "small").await.as_deref(), Ok(&small[..]));
        assert_eq!(get(s, &b, "dir/large").await.as_deref(), Ok(&large[..]));
        let h = s.head_object(&b, &key("dir/large")).await.expect("head");
        assert_eq!((h.size, h.etag.as_str()), (ib.size, ib.etag.as_str()));
        let page = s
            .list_objects(
                &b,
                &ListQuery {
                    max_keys: 100,
                    ..Default::default()
                },
            )
            .await
            .expect("list");
        let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, vec!["dir/large", "small"]);
        assert_eq!(page.objects[1].etag, ia.etag);
    }

    c.stores[2]
        .delete_object(&b, &key("small"))
        .await
        .expect("delete through C");
    for s in &c.stores {
        assert!(matches!(
            s.head_object(&b, &key("small")).await,
            Err(StoreError::NoSuchKey)
        ));
    }

    // Node D stops answering: reads (4 of 8 shards needed) and writes (5 needed, 6 left)
    // go on through the others.
    let mut c = c;
    c.servers[3] = None;
    let later = data(200_000, 3);
    put(&c.stores[1], &b, "after-d-left", &later).await;
    for s in &c.stores[..3] {
        assert_eq!(get(s, &b, "dir/large").await.as_deref(), Ok(&large[..]));
        assert_eq!(get(s, &b, "after-d-left").await.as_deref(), Ok(&later[..]));
    }
    let off = c.stores[0].offline_drives().await;
    assert_eq!(
        off,
        vec![
            c.endpoints[endpoint_index(3, 0)].clone(),
            c.endpoints[endpoint_index(3, 1)].clone()
        ]
    );

    // Node C goes too: 4 drives left = K. Reads still work; a write (needs 5) is refused
    // and leaves nothing visible.
    c.servers[2] = None;
    for s in &c.stores[..2] {
        assert_eq!(get(s, &b, "dir/large").await.as_deref(), Ok(&large[..]));
    }
    let refused = c.stores[0]
        .put_object(
            &b,
            &key("below-quorum"),
            cluster::BytesBody::chunked(data(50_000, 4), 10_000),
            cluster::PutOptions::default(),
        )
        .await;
    assert!(
        // Refused by the drives (5 needed) or, first, by the key lock (3 of 4 nodes needed).
        matches!(
            refused,
            Err(StoreError::WriteQuorum { need: 5, .. } | StoreError::LockTimeout { need: 3, .. })
        ),
        "{refused:?}"
    );
    assert!(matches!(
        c.stores[1].head_object(&b, &key("below-quorum")).await,
        Err(StoreError::NoSuchKey)
    ));
}

/// The next liveness event, within 15 s.
async fn next_event(events: &mut tokio::sync::broadcast::Receiver<NodeEvent>) -> NodeEvent {
    tokio::time::timeout(Duration::from_secs(15), events.recv())
        .await
        .expect("an event in time")
        .expect("events open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_node_rejoins_and_reads_what_it_missed() {
    let mut c = start_cluster().await;
    let b = bucket("rejoin");
    c.stores[0].make_bucket(&b).await.expect("bucket");
    let before = data(300_000, 5);
    put(&c.stores[0], &b, "before", &before).await;
    let mut events = c.stores[1].node_events();
    let d_name = format!("{}:{}", c.hosts[3], c.ports[3]);
    // Node D stops (server and store), a write happens without it, then it restarts on the
    // same port with the same drives.
    c.servers[3] = None;
    drop(c.stores.pop());
    let during = data(300_000, 6);
    put(&c.stores[1], &b, "during", &during).await;
    // The write found D gone: its subscribers heard it.
    assert_eq!(
        next_event(&mut events).await,
        NodeEvent::Offline(d_name.clone())
    );
    assert_eq!(c.stores[1].liveness().is_online(&d_name), Some(false));
    let listener = tokio::net::TcpListener::bind((c.hosts[3].as_str(), c.ports[3]))
        .await
        .expect("port bound again");
    let cfg = StoreConfig::new(c.endpoints.clone());
    let node =
        NodeDrives::prepare(&cfg, node_config(&c.hosts[3], c.ports[3])).expect("node prepared");
    c.servers[3] = Some(serve(
        listener,
        RpcService::new(node.served(), internode_key()),
    ));
    let d = tokio::time::timeout(Duration::from_secs(30), Store::open_on(cfg, node))
        .await
        .expect("rejoins in time")
        .expect("rejoins");
    assert_eq!(d.layout().deployment_id, c.stores[0].layout().deployment_id);
    // The others see D answer again: the cue to heal what it missed.
    assert_eq!(
        next_event(&mut events).await,
        NodeEvent::Online(d_name.clone())
    );
    assert_eq!(c.stores[1].liveness().is_online(&d_name), Some(true));
    assert_eq!(get(&d, &b, "before").await.as_deref(), Ok(&before[..]));
    assert_eq!(get(&d, &b, "during").await.as_deref(), Ok(&during[..]));
    // Its drives serve the others again.
    assert!(c.stores[0].offline_drives().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_with_drives_of_another_deployment_is_refused() {
    let mut c = start_cluster().await;
    // Node D goes down and comes back with drives from another deployment in its slots.
    c.servers[3] = None;
    let d_store = c.stores.pop().expect("four stores");
    drop(d_store);
    for d in 0..2 {
        let i = endpoint_index(3, d);
        let path = c.endpoints[i]
            .split_once(&format!(":{}", c.ports[3]))
            .map(|(_, p)| p.to_owned())
            .expect("endpoint path");
        std::fs::remove_dir_all(&path).expect("old drive removed");
        let foreign = FormatRecord {
            version: FORMAT_VERSION,
            deployment_id: "another-deployment".into(),
            drive_id: format!("foreign-{d}"),
            set_index: 0,
            slot: i,
            sets: 1,
            drives_per_set: 8,
        };
        LocalDrive::write_format(std::path::Path::new(&path), &foreign).expect("format written");
    }
    let cfg = StoreConfig::new(c.endpoints.clone());
    let node =
        NodeDrives::prepare(&cfg, node_config(&c.hosts[3], c.ports[3])).expect("node prepared");
    let listener = tokio::net::TcpListener::bind((c.hosts[3].as_str(), c.ports[3]))
        .await
        .expect("port bound again");
    c.servers[3] = Some(serve(
        listener,
        RpcService::new(node.served(), internode_key()),
    ));
    let err = tokio::time::timeout(Duration::from_secs(30), Store::open_on(cfg, node))
        .await
        .expect("refused promptly")
        .expect_err("foreign drives refused");
    // The refused node no longer offers its drives to the peers.
    let remote = RemoteDrive::new(
        &c.endpoints[endpoint_index(3, 0)],
        RpcClient::new(internode_key()),
    )
    .expect("remote drive");
    let info = remote.info().await.expect("the node still answers");
    assert!(!info.online && info.format.is_none(), "{info:?}");
    match &err {
        StoreError::DriveRefused { drive, reason } => {
            assert_eq!(drive, &c.endpoints[endpoint_index(3, 0)]);
            assert!(reason.contains("another-deployment"), "{reason}");
        }
        other => panic!("expected DriveRefused, got {other:?}"),
    }
    // The rest of the cluster still serves.
    let b = bucket("still-here");
    c.stores[0].make_bucket(&b).await.expect("bucket");
    put(&c.stores[0], &b, "k", b"v").await;
    assert_eq!(get(&c.stores[1], &b, "k").await.as_deref(), Ok(&b"v"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_on_one_port_and_four_loopback_addresses_wait_for_a_late_node() {
    // Node A (the first endpoint's, which creates the deployment) starts last: the others
    // wait for it, then all agree.
    let c = start_cluster_with(Addressing::Hosts, Some(0)).await;
    assert!(c.ports.iter().all(|p| *p == c.ports[0]));
    let dep = c.stores[0].layout().deployment_id;
    assert!(c.stores.iter().all(|s| s.layout().deployment_id == dep));
    let b = bucket("hosts");
    c.stores[3].make_bucket(&b).await.expect("bucket");
    let body = data(1 << 20, 7);
    put(&c.stores[3], &b, "k", &body).await;
    for s in &c.stores {
        assert_eq!(get(s, &b, "k").await.as_deref(), Ok(&body[..]));
        assert!(s.offline_drives().await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_node_gives_up_when_the_first_endpoints_node_never_comes() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Nobody listens on the first node's port (bound, then closed).
    let gone = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let gone_port = gone.local_addr().expect("local addr").port();
    drop(gone);
    let me = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let my_port = me.local_addr().expect("local addr").port();
    let path = |n: &str| dir.path().join(n).display().to_string();
    let endpoints = vec![
        format!("http://127.0.0.1:{gone_port}{}", path("a1")),
        format!("http://127.0.0.1:{my_port}{}", path("b1")),
        format!("http://127.0.0.1:{gone_port}{}", path("a2")),
        format!("http://127.0.0.1:{my_port}{}", path("b2")),
    ];
    let cfg = StoreConfig::new(endpoints.clone());
    let mut nc = node_config("127.0.0.1", my_port);
    nc.startup_wait = Duration::from_millis(600);
    let node = NodeDrives::prepare(&cfg, nc).expect("node prepared");
    let _server = serve(me, RpcService::new(node.served(), internode_key()));
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(20), Store::open_on(cfg, node))
        .await
        .expect("bounded wait")
        .expect_err("no deployment to join");
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert!(err.to_string().contains(&endpoints[0]), "{err}");
    // Nothing was formatted on this node's drives.
    assert!(!dir.path().join("b1").join(".tessera.sys").exists());
}

/// Times PUT (through `w`) and GET (through `r`): 64 MiB objects one at a time, and 4 KiB
/// objects at concurrency 1 and 16. Returns (PUT MB/s, GET MB/s, small PUT ops/s c1,
/// small GET ops/s c1, small PUT ops/s c16, small GET ops/s c16).
async fn measure(w: &Store, r: &Store) -> [f64; 6] {
    use std::time::Instant;
    let b = bucket("bench");
    w.make_bucket(&b).await.expect("bucket");
    let big = data(64 << 20, 9);
    let n_big = 4;
    let t = Instant::now();
    for i in 0..n_big {
        put(w, &b, &format!("big{i}"), &big).await;
    }
    let put_mbs = (n_big * big.len()) as f64 / t.elapsed().as_secs_f64() / 1e6;
    let t = Instant::now();
    for i in 0..n_big {
        assert_eq!(
            get(r, &b, &format!("big{i}")).await.map(|v| v.len()),
            Ok(big.len())
        );
    }
    let get_mbs = (n_big * big.len()) as f64 / t.elapsed().as_secs_f64() / 1e6;
    let small = data(4096, 10);
    let mut out = [put_mbs, get_mbs, 0.0, 0.0, 0.0, 0.0];
    for (slot, conc) in [(2, 1usize), (4, 16)] {
        let ops = 480;
        let t = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..conc {
            let (w, b, small) = (w.clone(), b.clone(), small.clone());
            tasks.spawn(async move {
                for i in (c..ops).step_by(conc) {
                    put(&w, &b, &format!("s{conc}-{i}"), &small).await;
                }
            });
        }
        while let Some(x) = tasks.join_next().await {
            x.expect("put task");
        }
        out[slot] = ops as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..conc {
            let (r, b) = (r.clone(), b.clone());
            tasks.spawn(async move {
                for i in (c..ops).step_by(conc) {
                    assert_eq!(
                        get(&r, &b, &format!("s{conc}-{i}")).await.map(|v| v.len()),
                        Ok(4096)
                    );
                }
            });
        }
        while let Some(x) = tasks.join_next().await {
            x.expect("get task");
        }
        out[slot + 1] = ops as f64 / t.elapsed().as_secs_f64();
    }
    out
}

/// One node with 8 local drives vs 4 nodes x 2 drives (PUT through A, GET through B),
/// in one process over loopback. Prints the figures and the ratios.
/// Run with `cargo test --release -p cluster --test multinode -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn throughput_one_node_vs_four() {
    let dir = tempfile::tempdir().expect("temp dir");
    let paths: Vec<String> = (0..8)
        .map(|i| dir.path().join(format!("d{i}")).display().to_string())
        .collect();
    let single = Store::open(StoreConfig::new(paths))
        .await
        .expect("single node");
    let one = measure(&single, &single).await;
    drop(single);
    let c = start_cluster().await;
    let four = measure(&c.stores[0], &c.stores[1]).await;
    let names = [
        "PUT 64MiB MB/s",
        "GET 64MiB MB/s",
        "PUT 4KiB ops/s c1",
        "GET 4KiB ops/s c1",
        "PUT 4KiB ops/s c16",
        "GET 4KiB ops/s c16",
    ];
    for i in 0..6 {
        println!(
            "{:<20} 1 node x 8 drives {:>9.1}   4 nodes x 2 drives {:>9.1}   ratio {:.2}",
            names[i],
            one[i],
            four[i],
            four[i] / one[i]
        );
    }
    assert!(four.iter().all(|x| *x > 0.0));
}

/// GET reads no bucket record when the object is found; a miss still says which is missing.
#[tokio::test]
async fn a_get_miss_says_whether_the_bucket_or_the_key_is_missing() {
    let t = TestStore::new(4).await;
    let b = bucket("present");
    t.store.make_bucket(&b).await.expect("bucket");
    put(&t.store, &b, "k", b"value").await;
    assert_eq!(get(&t.store, &b, "k").await.as_deref(), Ok(&b"value"[..]));
    let miss = t.store.get_object(&b, &key("absent"), None, None).await;
    assert!(
        matches!(miss, Err(StoreError::NoSuchKey)),
        "{:?}",
        miss.err()
    );
    let miss = t
        .store
        .get_object(&bucket("absent-bucket"), &key("k"), None, None)
        .await;
    assert!(
        matches!(miss, Err(StoreError::NoSuchBucket)),
        "{:?}",
        miss.err()
    );
}
