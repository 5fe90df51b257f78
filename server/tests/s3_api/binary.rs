//! The `tessera` binary itself: starts on port 0 with given drives, prints a banner whose
//! `Endpoint:` line carries the real port and whose credential lines match the environment,
//! answers health probes, and stops on SIGTERM/kill. Also: losing write quorum answers 503
//! SlowDown with an S3 error body.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::common::{raw, TestServer};
use super::sign::signed_request;

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_prints_the_real_endpoint_and_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let drives = format!("{}/drive{{1...4}}", dir.path().display());
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["server", "--address", "127.0.0.1:0", &drives])
            .env("TESSERA_ROOT_USER", "binaryuser")
            .env("TESSERA_ROOT_PASSWORD", "binarysecret")
            .env_remove("MINIO_ROOT_USER")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tessera"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        let started = Instant::now();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let done = line.starts_with("boto3:");
            lines.push(line);
            if done || started.elapsed() > Duration::from_secs(60) {
                break;
            }
        }
        lines
    });
    let lines = tokio::time::timeout(Duration::from_secs(60), lines)
        .await
        .unwrap()
        .unwrap();
    let endpoints: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("Endpoint: "))
        .collect();
    assert_eq!(endpoints.len(), 1, "{lines:?}");
    let url = endpoints[0].trim_start_matches("Endpoint: ");
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0);
    assert!(lines.iter().any(|l| l == "AccessKey: binaryuser"));
    assert!(lines.iter().any(|l| l == "SecretKey: binarysecret"));
    assert!(!lines.iter().any(|l| l.contains("WARNING")));
    assert!(lines.iter().any(|l| l.contains("aws --endpoint-url")));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let r = raw(
        addr,
        b"GET /minio/health/ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(dir.path().join("drive3").is_dir());
}

#[tokio::test]
async fn losing_write_quorum_answers_slow_down() {
    let t = TestServer::start().await;
    t.create_bucket("qqq").await;
    t.put("qqq", "before", b"x".to_vec()).await;
    let cluster_health = |addr| async move {
        raw(
            addr,
            b"GET /minio/health/cluster HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await
        .status
    };
    assert_eq!(cluster_health(t.addr()).await, 200);
    // Take two of the four drives away (EC 2+2 needs 3 for a write).
    for d in ["d1", "d2"] {
        let p = t.dir.path().join(d);
        std::fs::remove_dir_all(&p).unwrap();
        std::fs::write(&p, b"not a directory any more").unwrap();
    }
    let r = raw(
        t.addr(),
        &signed_request(
            &t.host(),
            "PUT",
            "/qqq/after",
            &[],
            &[],
            &vec![1u8; 300_000],
        ),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("SlowDown"));
    // Below write quorum: the cluster probe says so, the node itself is still ready.
    assert_eq!(cluster_health(t.addr()).await, 503);
    let r = raw(
        t.addr(),
        b"GET /health/ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn shutdown_stops_accepting_and_closes_idle_keep_alive_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let TestServer { server, dir, .. } = TestServer::start().await;
    let addr = server.local_addr;
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /health/live HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    tokio::time::timeout(Duration::from_secs(10), server.shutdown())
        .await
        .expect("shutdown with an idle keep-alive connection finishes promptly");
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "idle connection closed");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    drop(dir);
}

/// `TESSERA_LOG_FORMAT=json` makes every log line on stderr one JSON object (what log
/// shippers parse), and text logs carry no colour codes when stderr is not a terminal.
#[tokio::test]
async fn logs_are_json_lines_on_request_and_plain_text_otherwise() {
    for json in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let drives = format!("{}/drive{{1...4}}", dir.path().display());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
        cmd.args(["server", "--address", "127.0.0.1:0", &drives])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if json {
            cmd.env("TESSERA_LOG_FORMAT", "json");
        } else {
            cmd.env_remove("TESSERA_LOG_FORMAT");
        }
        let mut child = Child(cmd.spawn().expect("spawn tessera"));
        let stderr = child.0.stderr.take().unwrap();
        let lines = tokio::task::spawn_blocking(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let done = line.contains("starting");
                lines.push(line);
                if done || lines.len() > 50 {
                    break;
                }
            }
            lines
        });
        let lines = tokio::time::timeout(Duration::from_secs(60), lines)
            .await
            .unwrap()
            .unwrap();
        assert!(
            lines.iter().any(|l| l.contains("starting")),
            "no start-up line: {lines:?}"
        );
        for line in &lines {
            assert!(!line.contains('\u{1b}'), "colour codes in {line:?}");
            let parsed = serde_json::from_str::<serde_json::Value>(line);
            if json {
                let v = parsed.unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
                assert!(v["level"].is_string(), "{line}");
                assert!(v["timestamp"].is_string(), "{line}");
                assert!(v["fields"].is_object(), "{line}");
            } else {
                assert!(parsed.is_err(), "JSON without TESSERA_LOG_FORMAT: {line}");
            }
        }
    }
}
