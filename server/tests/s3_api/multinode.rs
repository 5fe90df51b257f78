//! Several `tessera` processes, one deployment: four child processes of the real binary on
//! 127.0.0.1 with four ports, two drives each (8 drives, EC 4+4), the same explicit endpoint
//! list and root credentials. Pins that they all become ready, that any node reads
//! byte-identically what another wrote, that with one node SIGKILLed reads and writes go on
//! and `/health/cluster` stays 200, that with two gone reads go on while writes get
//! `503 SlowDown` with an S3 XML body, that a node with another root secret never joins
//! (never ready, the others unaffected), and that a node whose peers never answer serves
//! health and answers S3 with 503 until its store opens; and that nodes named in the
//! endpoint list by addresses other than the ones they listen on (`--self`, here behind
//! one TCP forwarder each) still form one deployment. Every child is killed on drop.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;

use super::common::{
    bytes, free_ports, node_command, parse_response, raw, sdk_client, Nodes, SECRET_KEY,
};
use super::sign::signed_request;

fn spawn_node(port: u16, endpoints: &[String], secret: &str) -> std::process::Child {
    node_command(port, &[], endpoints, secret)
        .spawn()
        .expect("spawn tessera")
}

async fn probe(port: u16, path: &str) -> Option<u16> {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let head = String::from_utf8_lossy(&buf);
        head.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()
        .flatten()
}

async fn wait_ready(port: u16, within: Duration) {
    let started = Instant::now();
    while started.elapsed() < within {
        if probe(port, "/health/ready").await == Some(200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("node on port {port} not ready within {within:?}");
}

/// One URL per drive: node `n` (1-based) serves `<dir>/n{n}/d1` and `<dir>/n{n}/d2`.
fn endpoint_list(dir: &std::path::Path, ports: &[u16]) -> Vec<String> {
    let mut out = Vec::new();
    for d in 1..=2 {
        for (i, p) in ports.iter().enumerate() {
            out.push(format!(
                "http://127.0.0.1:{p}{}/n{}/d{d}",
                dir.display(),
                i + 1
            ));
        }
    }
    out
}

fn client(port: u16) -> aws_sdk_s3::Client {
    sdk_client(&format!("http://127.0.0.1:{port}"), None)
}

async fn get(c: &aws_sdk_s3::Client, key: &str) -> Vec<u8> {
    c.get_object()
        .bucket("multi")
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {key}: {e:?}"))
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

async fn put(c: &aws_sdk_s3::Client, key: &str, data: &[u8]) {
    c.put_object()
        .bucket("multi")
        .key(key)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {key}: {e:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_share_one_store_and_survive_one_node_loss() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ports = free_ports(4);
    let endpoints = endpoint_list(dir.path(), &ports);
    let mut nodes = Nodes(
        ports
            .iter()
            .map(|p| Some(spawn_node(*p, &endpoints, SECRET_KEY)))
            .collect(),
    );
    let t0 = Instant::now();
    for p in &ports {
        wait_ready(*p, Duration::from_secs(60)).await;
    }
    eprintln!("all ready: {:?}", t0.elapsed());
    for p in &ports {
        assert_eq!(probe(*p, "/minio/health/cluster").await, Some(200));
    }
    let clients: Vec<_> = ports.iter().map(|p| client(*p)).collect();
    clients[0]
        .create_bucket()
        .bucket("multi")
        .send()
        .await
        .expect("create bucket on node 1");
    let small = b"hello from node one".to_vec();
    let large = bytes(3 << 20, 7);
    put(&clients[0], "small", &small).await;
    put(&clients[0], "dir/large", &large).await;
    for c in &clients[1..] {
        assert_eq!(get(c, "small").await, small);
        assert_eq!(get(c, "dir/large").await, large);
        let head = c
            .head_object()
            .bucket("multi")
            .key("dir/large")
            .send()
            .await
            .expect("head");
        assert_eq!(head.content_length(), Some(large.len() as i64));
        let list = c
            .list_objects_v2()
            .bucket("multi")
            .send()
            .await
            .expect("list");
        let keys: Vec<&str> = list.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(keys, ["dir/large", "small"]);
    }

    eprintln!("written and read on all nodes: {:?}", t0.elapsed());
    // Node 4 gone: 6 of 8 drives, write quorum 5.
    nodes.kill(3);
    put(&clients[1], "after-one-loss", &large[..100_000]).await;
    for c in &clients[..3] {
        assert_eq!(get(c, "dir/large").await, large);
        assert_eq!(get(c, "after-one-loss").await, &large[..100_000]);
    }
    assert_eq!(probe(ports[0], "/health/cluster").await, Some(200));

    // Node 4 comes back with another root secret: its internode calls are refused (and it
    // refuses the peers'), so it never becomes ready, and the others go on without it.
    nodes.0[3] = Some(spawn_node(ports[3], &endpoints, "a-different-secret"));
    let started = Instant::now();
    while probe(ports[3], "/health/live").await != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "node 4 never live"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(probe(ports[3], "/health/ready").await, Some(503));
    put(&clients[0], "while-an-impostor-runs", &small).await;
    assert_eq!(get(&clients[2], "while-an-impostor-runs").await, small);
    assert_eq!(probe(ports[0], "/health/cluster").await, Some(200));
    nodes.kill(3);

    eprintln!("one node lost: {:?}", t0.elapsed());
    // Node 3 gone too: 4 of 8 drives, reads yes, writes no.
    nodes.kill(2);
    for c in &clients[..2] {
        assert_eq!(get(c, "small").await, small);
        assert_eq!(get(c, "dir/large").await, large);
    }
    assert_eq!(probe(ports[1], "/health/cluster").await, Some(503));
    assert_eq!(probe(ports[1], "/health/ready").await, Some(200));
    // Only 2 of 4 nodes can grant the write's distributed lock, and the other two are known
    // offline: the lock gives up after a few rounds (not the 45 s acquire timeout) and the
    // write fails with 503 SlowDown; one raw request, no retries.
    let addr: SocketAddr = format!("127.0.0.1:{}", ports[1]).parse().unwrap();
    let host = format!("127.0.0.1:{}", ports[1]);
    let req = signed_request(&host, "PUT", "/multi/no-quorum", &[], &[], &[2u8; 5000]);
    let refused_at = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(90), async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(&req).await.expect("write");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        parse_response(&buf)
    })
    .await
    .expect("a write without quorum is answered in time");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("SlowDown"));
    assert!(r.text().contains("<Error>"), "{}", r.text());
    let refused_after = refused_at.elapsed();
    assert!(
        refused_after < Duration::from_secs(15),
        "a write without a lock majority waited {refused_after:?}"
    );
    eprintln!("write refused without quorum: {:?}", t0.elapsed());
    // Nothing of the refused write is visible through a survivor.
    let err = clients[0]
        .head_object()
        .bucket("multi")
        .key("no-quorum")
        .send()
        .await
        .expect_err("refused write is not visible");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
    drop(nodes);
}

#[tokio::test]
async fn a_node_whose_peers_are_silent_is_live_but_not_ready_and_answers_slow_down() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ports = free_ports(4);
    let endpoints = endpoint_list(dir.path(), &ports);
    let nodes = Nodes(vec![Some(spawn_node(ports[0], &endpoints, SECRET_KEY))]);
    let started = Instant::now();
    while probe(ports[0], "/health/live").await != Some(200) {
        assert!(started.elapsed() < Duration::from_secs(30), "never live");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(probe(ports[0], "/health/ready").await, Some(503));
    assert_eq!(probe(ports[0], "/minio/health/cluster").await, Some(503));
    let addr: SocketAddr = format!("127.0.0.1:{}", ports[0]).parse().unwrap();
    let host = format!("127.0.0.1:{}", ports[0]);
    let r = raw(addr, &signed_request(&host, "GET", "/", &[], &[], b"")).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("SlowDown"));
    // The internode RPC is mounted ahead of S3 auth and refuses an unsigned call.
    let r = raw(
        addr,
        format!(
            "GET /_tessera/rpc/v1/x/info HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    drop(nodes);
}

/// A TCP forwarder from a listener on 127.0.0.1:`from` to 127.0.0.1:`to` (what a NAT, a
/// Kubernetes service or the partition drill's proxy puts in front of a node).
async fn forward(from: u16, to: u16) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", from))
        .await
        .expect("bind forwarder");
    tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            conns.spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_named_by_forwarded_addresses_form_one_deployment_with_self() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ports = free_ports(8);
    let (listen, named) = ports.split_at(4);
    // The endpoint list names each node by its forwarder's port; no node listens there.
    let endpoints = endpoint_list(dir.path(), named);
    let mut forwarders = Vec::new();
    for i in 0..4 {
        forwarders.push(forward(named[i], listen[i]).await);
    }
    let mut nodes = Nodes(
        (0..4)
            .map(|i| {
                let mut c = node_command(listen[i], &[], &endpoints, SECRET_KEY);
                c.env("TESSERA_SELF", format!("127.0.0.1:{}", named[i]));
                Some(c.spawn().expect("spawn tessera"))
            })
            .collect(),
    );
    for p in listen {
        wait_ready(*p, Duration::from_secs(60)).await;
    }
    for p in named {
        assert_eq!(probe(*p, "/health/cluster").await, Some(200), "through {p}");
    }
    // Written through one node's forwarded name, read through every node's own address.
    let writer = client(named[0]);
    writer
        .create_bucket()
        .bucket("multi")
        .send()
        .await
        .expect("create bucket");
    let data = bytes(300_000, 11);
    put(&writer, "forwarded", &data).await;
    for p in listen {
        assert_eq!(get(&client(*p), "forwarded").await, data, "via {p}");
    }
    // One deployment of 8 drives: with a node gone, the others still write (EC 4+4).
    nodes.kill(3);
    put(&client(listen[1]), "after-loss", &data[..1000]).await;
    assert_eq!(get(&client(listen[2]), "after-loss").await, &data[..1000]);
    drop(nodes);
    for f in forwarders {
        f.abort();
    }
}

/// A test CA, and a certificate for 127.0.0.1 signed by it, in MinIO's certs layout:
/// `public.crt`, `private.key`, `CAs/ca.crt`. Returns the CA's PEM.
fn write_ca_signed_certs(certs: &std::path::Path) -> String {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "tessera test CA");
    let ca = ca.self_signed(&ca_key).expect("ca cert");
    let node_key = KeyPair::generate().expect("node key");
    let node = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("node params")
        .signed_by(&node_key, &ca, &ca_key)
        .expect("node cert");
    std::fs::create_dir_all(certs.join("CAs")).expect("mkdir");
    std::fs::write(certs.join("public.crt"), node.pem()).expect("write");
    std::fs::write(certs.join("private.key"), node_key.serialize_pem()).expect("write");
    std::fs::write(certs.join("CAs").join("ca.crt"), ca.pem()).expect("write");
    ca.pem()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_over_https_trust_the_cas_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = dir.path().join("certs");
    let ca = write_ca_signed_certs(&certs);
    let ports = free_ports(4);
    let endpoints: Vec<String> = endpoint_list(dir.path(), &ports)
        .into_iter()
        .map(|e| e.replacen("http://", "https://", 1))
        .collect();
    let _nodes = Nodes(
        ports
            .iter()
            .map(|p| {
                let certs_flag = [std::ffi::OsStr::new("--certs-dir"), certs.as_os_str()];
                let mut c = node_command(*p, &certs_flag, &endpoints, SECRET_KEY);
                Some(c.spawn().expect("spawn tessera"))
            })
            .collect(),
    );
    let clients: Vec<aws_sdk_s3::Client> = ports
        .iter()
        .map(|p| sdk_client(&format!("https://127.0.0.1:{p}"), Some(&ca)))
        .collect();
    // Ready = S3 served (the store opened, which needs the peers over https).
    let started = Instant::now();
    loop {
        match clients[0].create_bucket().bucket("multi").send().await {
            Ok(_) => break,
            Err(e) => assert!(
                started.elapsed() < Duration::from_secs(60),
                "node 1 never served S3 over https: {e:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let data = bytes(2 << 20, 5);
    put(&clients[0], "tls", &data).await;
    for c in &clients[1..] {
        let started = Instant::now();
        while c.head_bucket().bucket("multi").send().await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "never ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(get(c, "tls").await, data);
    }
}
