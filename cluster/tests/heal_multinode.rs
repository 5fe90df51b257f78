//! Offline → online healing across nodes: four in-process "nodes" (two drives each, EC 4+4,
//! internode RPC on real 127.0.0.1 sockets). A node stops; a write made without it is
//! recorded in the writing node's durable missed-write queue; when the node answers again,
//! the liveness event makes the writer heal it, and its drives hold the shards (on disk).

mod common;

use std::time::{Duration, Instant};

use cluster::rpc::RpcService;
use cluster::scanner::ScannerConfig;
use cluster::{NodeConfig, NodeDrives, Store, StoreConfig};
use common::rpc_node::*;
use common::*;

const NODES: usize = 4;

fn node_config(port: u16) -> NodeConfig {
    NodeConfig {
        local_addresses: Some(vec![("127.0.0.1".to_owned(), port)]),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_returns_is_healed_of_the_writes_it_missed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (listeners, ports) = common::rpc_node::listeners(NODES).await;
    let path = |n: usize, d: usize| dir.path().join(format!("node{n}")).join(format!("d{d}"));
    let mut endpoints = vec![String::new(); 2 * NODES];
    for n in 0..NODES {
        for d in 0..2 {
            endpoints[d * NODES + n] =
                format!("http://127.0.0.1:{}{}", ports[n], path(n, d).display());
        }
    }
    let cfg = StoreConfig::new(endpoints.clone());
    let mut servers: Vec<Option<RpcServer>> = Vec::new();
    let mut opening = Vec::new();
    for (n, listener) in listeners.into_iter().enumerate() {
        let node = NodeDrives::prepare(&cfg, node_config(ports[n])).expect("prepared");
        servers.push(Some(serve(
            listener,
            RpcService::new(node.served(), internode_key()),
        )));
        let cfg = cfg.clone();
        opening.push(tokio::spawn(async move { Store::open_on(cfg, node).await }));
    }
    let mut stores: Vec<Store> = Vec::new();
    for o in opening {
        let s = tokio::time::timeout(Duration::from_secs(60), o)
            .await
            .expect("opens in time")
            .expect("task")
            .expect("node opens");
        stores.push(s);
    }
    let quiet = ScannerConfig {
        interval: Duration::from_secs(3600),
        ..ScannerConfig::default()
    };
    stores[1].spawn_healing_with(quiet);
    let b = bucket("returns");
    stores[0].make_bucket(&b).await.expect("bucket");

    // Node 3 stops answering; node 1 writes without it.
    servers[3] = None;
    drop(stores.pop());
    let during = data(300_000, 9);
    put(&stores[1], &b, "during", &during).await;
    assert!(stores[1].heal_status().await.queue_pending >= 1);
    for d in 0..2 {
        assert!(
            shard_files(&path(3, d)).is_empty(),
            "node 3 missed the write"
        );
    }
    // Give the queue worker time to try (and fail) while node 3 is away.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(stores[1].heal_status().await.queue_pending >= 1);

    // Node 3 answers again (same port, same drives).
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", ports[3]))
        .await
        .expect("port bound again");
    let node = NodeDrives::prepare(&cfg, node_config(ports[3])).expect("prepared");
    servers[3] = Some(serve(
        listener,
        RpcService::new(node.served(), internode_key()),
    ));
    let back = tokio::time::timeout(Duration::from_secs(30), Store::open_on(cfg, node))
        .await
        .expect("rejoins in time")
        .expect("rejoins");
    let start = Instant::now();
    loop {
        let healed = (0..2).all(|d| shard_files(&path(3, d)).len() == 1);
        if healed && stores[1].heal_status().await.queue_pending == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "node 3 not healed: {:?}",
            stores[1].heal_status().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(get(&back, &b, "during").await.as_deref(), Ok(&during[..]));
    drop(servers);
}
