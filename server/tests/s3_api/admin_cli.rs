//! The `tessera admin` and `tessera bench` commands of the real binary against real servers:
//! over https with a test CA (trusted by `--ca-bundle` or `AWS_CA_BUNDLE`, refused without
//! it, accepted with a warning by `--insecure`), and `tessera admin heal status --cluster`
//! over two child-process nodes (both at full redundancy; then one killed: the cluster is
//! not, and the dead node is reported unreachable). Every child process is killed on drop.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::common::{free_ports, node_command, Nodes, TestServer, ACCESS_KEY, SECRET_KEY};

/// A test CA and a server certificate for 127.0.0.1 / localhost signed by it, written as
/// `<dir>/ca.pem`, `<dir>/certs/public.crt` and `<dir>/certs/private.key`.
fn write_ca_and_server_cert(dir: &Path) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "tessera test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let key = rcgen::KeyPair::generate().expect("server key");
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("server params");
    let cert = params.signed_by(&key, &ca, &ca_key).expect("server cert");
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).expect("mkdir");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write CA");
    std::fs::write(certs.join("public.crt"), cert.pem()).expect("write cert");
    std::fs::write(certs.join("private.key"), key.serialize_pem()).expect("write key");
}

/// What one run of the binary printed.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `tessera <args>` with the root credentials and `AWS_CA_BUNDLE` set to `ca_env` (or
/// removed: this machine may set it), bounded in time (killed on timeout).
async fn tessera(args: &[&str], ca_env: Option<&Path>) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(args)
        .env("TESSERA_ROOT_USER", ACCESS_KEY)
        .env("TESSERA_ROOT_PASSWORD", SECRET_KEY)
        .env_remove("TESSERA_ENDPOINT")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    match ca_env {
        Some(p) => cmd.env("AWS_CA_BUNDLE", p),
        None => cmd.env_remove("AWS_CA_BUNDLE"),
    };
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("the command ends within 90 s")
        .expect("run tessera");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_status_and_bench_put_over_https_with_a_test_ca() {
    let t = TestServer::start_with(|c, dir| {
        write_ca_and_server_cert(dir);
        c.tls = Some(tessera_server::config::TlsPaths {
            cert: dir.join("certs/public.crt"),
            key: dir.join("certs/private.key"),
        });
    })
    .await;
    let url = format!("https://127.0.0.1:{}", t.addr().port());
    let ca = t.dir.path().join("ca.pem");
    let ca_arg = ca.to_str().expect("utf-8 path");
    let status = ["admin", "heal", "status", "--json", "--endpoint", &url];

    // --ca-bundle.
    let with_flag: Vec<&str> = status
        .iter()
        .copied()
        .chain(["--ca-bundle", ca_arg])
        .collect();
    let r = tessera(&with_flag, None).await;
    assert!(r.ok, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["redundancy_ok"], true, "{v:#}");
    assert_eq!(v["queue"]["pending"], 0, "{v:#}");
    assert_eq!(v["drives"].as_array().map(Vec::len), Some(4), "{v:#}");

    // AWS_CA_BUNDLE alone.
    let r = tessera(&status, Some(&ca)).await;
    assert!(r.ok, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(r.stdout.contains("\"redundancy_ok\": true"), "{}", r.stdout);

    // Neither: the test CA is not a system root, so the certificate is refused.
    let r = tessera(&status, None).await;
    assert!(!r.ok, "an unknown CA must be refused: {}", r.stdout);
    assert!(
        r.stderr.to_lowercase().contains("certificate"),
        "the error names the certificate: {}",
        r.stderr
    );

    // --insecure: no verification, and a warning.
    let insecure: Vec<&str> = status.iter().copied().chain(["--insecure"]).collect();
    let r = tessera(&insecure, None).await;
    assert!(r.ok, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(r.stderr.contains("WARNING: --insecure"), "{}", r.stderr);

    // The table form over https too.
    let r = tessera(&["admin", "heal", "status", "--endpoint", &url], Some(&ca)).await;
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stdout.contains("Redundancy: OK"), "{}", r.stdout);

    // A short bench PUT over https.
    let r = tessera(
        &[
            "bench",
            "put",
            "--endpoint",
            &url,
            "--ca-bundle",
            ca_arg,
            "--bucket",
            "bench-https",
            "--size",
            "4KiB",
            "--concurrency",
            "2",
            "--duration",
            "20s",
            "--max-ops",
            "40",
            "--json",
            "--quiet",
        ],
        None,
    )
    .await;
    assert!(r.ok, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    let rows: Vec<Value> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let put = rows
        .iter()
        .find(|row| row["op"] == "put")
        .unwrap_or_else(|| panic!("a put row: {}", r.stdout));
    assert_eq!(put["errors"], 0, "{put:#}");
    assert_eq!(put["ops"], 40, "{put:#}");

    // The bench without trust in the test CA fails before measuring anything.
    let r = tessera(
        &[
            "bench",
            "put",
            "--endpoint",
            &url,
            "--size",
            "4KiB",
            "--duration",
            "1s",
            "--quiet",
        ],
        None,
    )
    .await;
    assert!(!r.ok, "{}", r.stdout);
    assert!(
        r.stderr.to_lowercase().contains("certificate"),
        "{}",
        r.stderr
    );
}

async fn ready(port: u16) -> bool {
    let Ok(addr) = format!("127.0.0.1:{port}").parse::<SocketAddr>() else {
        return false;
    };
    let fut = async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(b"GET /health/ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        Some(buf.starts_with(b"HTTP/1.1 200"))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heal_status_and_scan_cluster_ask_every_node_and_report_a_dead_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ports = free_ports(2);
    let mut endpoints = Vec::new();
    for d in 1..=2 {
        for (i, p) in ports.iter().enumerate() {
            endpoints.push(format!(
                "http://127.0.0.1:{p}{}/n{}/d{d}",
                dir.path().display(),
                i + 1
            ));
        }
    }
    let mut nodes = Nodes(
        ports
            .iter()
            .map(|p| {
                Some(
                    node_command(*p, &[], &endpoints, SECRET_KEY)
                        .spawn()
                        .expect("spawn tessera"),
                )
            })
            .collect(),
    );
    let started = Instant::now();
    for p in &ports {
        while !ready(*p).await {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "node {p} not ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let first = format!("http://127.0.0.1:{}", ports[0]);
    let second = format!("http://127.0.0.1:{}", ports[1]);
    let cluster = [
        "admin",
        "heal",
        "status",
        "--cluster",
        "--json",
        "--endpoint",
    ];
    let args: Vec<&str> = cluster.iter().copied().chain([first.as_str()]).collect();

    // Both up: two rows, both reachable, the cluster at full redundancy.
    let r = tessera(&args, None).await;
    assert!(r.ok, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).expect("JSON");
    let rows = v["nodes"].as_array().expect("nodes");
    assert_eq!(rows.len(), 2, "{v:#}");
    assert_eq!(rows[0]["endpoint"], first.as_str(), "{v:#}");
    assert_eq!(rows[0]["local"], true, "{v:#}");
    assert_eq!(rows[1]["endpoint"], second.as_str(), "{v:#}");
    assert_eq!(rows[1]["seen_as"], "online", "{v:#}");
    assert!(rows.iter().all(|n| n["reachable"] == true), "{v:#}");
    // Each row carries that node's own /heal JSON: its own drives are the local ones.
    let local_drives = |n: &Value| {
        n["status"]["drives"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter(|d| d["local"] == true)
                    .filter_map(|d| d["endpoint"].as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    assert!(
        local_drives(&rows[1])
            .iter()
            .all(|e| e.starts_with(&second)),
        "{v:#}"
    );
    assert_eq!(local_drives(&rows[1]).len(), 2, "{v:#}");
    assert_eq!(v["redundancy_ok"], true, "{v:#}");
    // The table names both nodes and the verdict.
    let table_args: Vec<&str> = ["admin", "heal", "status", "--cluster", "--endpoint"]
        .into_iter()
        .chain([first.as_str()])
        .collect();
    let r = tessera(&table_args, None).await;
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stdout.contains(&second), "{}", r.stdout);
    assert!(r.stdout.contains("Cluster redundancy: OK"), "{}", r.stdout);

    // `heal scan --cluster` starts a scanner cycle on both nodes: each one's count of
    // finished cycles goes up.
    let cycles = |v: &Value| -> Vec<u64> {
        v["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| n["status"]["scanner"]["cycles"].as_u64().unwrap_or(0))
            .collect()
    };
    let before = cycles(&v);
    let scan_args: Vec<&str> = ["admin", "heal", "scan", "--cluster", "--json", "--endpoint"]
        .into_iter()
        .chain([first.as_str()])
        .collect();
    let r = tessera(&scan_args, None).await;
    assert!(r.ok, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    let s: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(s["started"], 2, "{s:#}");
    let started = Instant::now();
    loop {
        let r = tessera(&args, None).await;
        let v: Value = serde_json::from_str(&r.stdout).expect("JSON");
        let now = cycles(&v);
        if now.len() == 2 && now.iter().zip(&before).all(|(n, b)| n > b) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "scanner cycles before {before:?}, now {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The second node dies: the cluster is not at full redundancy, and the row says why.
    nodes.kill(1);
    let r = tessera(&args, None).await;
    assert!(r.ok, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["redundancy_ok"], false, "{v:#}");
    let rows = v["nodes"].as_array().expect("nodes");
    assert_eq!(rows[1]["reachable"], false, "{v:#}");
    assert!(
        rows[1]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{v:#}"
    );
    assert_eq!(rows[0]["reachable"], true, "{v:#}");
    let r = tessera(&table_args, None).await;
    assert!(
        r.stdout.contains("Cluster redundancy: DEGRADED"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("unreachable"), "{}", r.stdout);
    // A scan cannot start on it: the command fails and names it.
    let r = tessera(
        &["admin", "heal", "scan", "--cluster", "--endpoint", &first],
        None,
    )
    .await;
    assert!(!r.ok, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(&format!("{second}: NOT started")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("{first}: scan started")),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("not started on 1 of 2 nodes"),
        "{}",
        r.stderr
    );
}
