//! Crash safety: a writer process (src/bin/crash_writer.rs) is SIGKILLed at random instants,
//! hundreds of times; after each kill the store is reopened and every acknowledged write
//! must read back byte-identical, nothing torn may be visible (every listed object reads
//! whole), and tmp/ must be empty. `CRASH_ITERATIONS` overrides the number of kills.

mod common;

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cluster::{body::collect, BucketName, ListQuery, ObjectKey, Store, StoreConfig, StoreError};

/// What a key may hold: `None` = absent, `Some(blake3 hex)`.
type Value = Option<String>;

#[derive(Default, Debug)]
struct KeyModel {
    acked: Value,
    pending: Vec<Value>,
    /// The writer's last lines about this key, for the failure message.
    history: Vec<String>,
}

impl KeyModel {
    fn note(&mut self, line: &str) {
        if self.history.len() == 24 {
            self.history.remove(0);
        }
        self.history.push(line.to_owned());
    }
}

fn apply_output(model: &mut BTreeMap<String, KeyModel>, lines: &[String]) {
    for line in lines {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["B", key, v] => {
                let v = (*v != "-").then(|| v.to_string());
                let m = model.entry(key.to_string()).or_default();
                m.note(line);
                m.pending.push(v);
            }
            ["A", key] => {
                let m = model.entry(key.to_string()).or_default();
                m.note(line);
                m.acked = m.pending.pop().expect("an ack follows its begin");
                m.pending.clear();
            }
            _ => {}
        }
    }
}

/// Reopens the store and checks the keys in `keys` (all 16 when `None`) against the model.
async fn verify(
    pattern: &str,
    model: &mut BTreeMap<String, KeyModel>,
    drives: &[std::path::PathBuf],
    keys: Option<Vec<String>>,
) {
    let mut cfg = StoreConfig::new(vec![pattern.to_owned()]);
    cfg.block_size = 64 * 1024;
    let store = Store::open(cfg).await.expect("store reopens after a crash");
    assert!(store.offline_drives().await.is_empty());
    for d in drives {
        let tmp = d.join(".tessera.sys/tmp");
        assert_eq!(
            std::fs::read_dir(&tmp).map(|r| r.count()).unwrap_or(0),
            0,
            "tmp/ cleaned at open"
        );
    }
    let b = BucketName::new("crash").expect("bucket name");
    if matches!(store.bucket_info(&b).await, Err(StoreError::NoSuchBucket)) {
        assert!(model.is_empty(), "the bucket vanished");
        return;
    }
    // Every listed object reads whole.
    let listed = store
        .list_objects(
            &b,
            &ListQuery {
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    let listed: Vec<String> = listed.objects.iter().map(|o| o.key.clone()).collect();
    let keys = keys.unwrap_or_else(|| (0..16).map(|i| format!("k{i:02}")).collect());
    for key in keys {
        let actual: Value = match store
            .get_object(&b, &ObjectKey::new(&key).expect("key"), None, None)
            .await
        {
            Ok(g) => {
                let size = g.info.size;
                let bytes = collect(g.body)
                    .await
                    .expect("a listed/settled object reads without error");
                assert_eq!(bytes.len() as u64, size);
                Some(blake3::hash(&bytes).to_hex().to_string())
            }
            Err(StoreError::NoSuchKey) => None,
            Err(e) => panic!("{key}: {e}"),
        };
        assert_eq!(
            listed.contains(&key),
            actual.is_some(),
            "{key}: listing and GET disagree"
        );
        let m = model.entry(key.clone()).or_default();
        let allowed = m.pending.contains(&actual) || m.acked == actual;
        assert!(
            allowed,
            "{key}: found {actual:?}, acknowledged {:?}, in flight {:?}; the writer's last lines \
             about it:\n{}",
            m.acked,
            m.pending,
            m.history.join("\n")
        );
        m.note(&format!("(verified after a kill: {actual:?})"));
        m.acked = actual;
        m.pending.clear();
    }
    drop(store);
}

#[test]
fn acknowledged_writes_survive_sigkill_and_nothing_torn_is_visible() {
    let iterations: usize = std::env::var("CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().expect("temp dir");
    let pattern = format!("{}/d{{1...4}}", dir.path().display());
    let drives: Vec<_> = (1..=4).map(|i| dir.path().join(format!("d{i}"))).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut model: BTreeMap<String, KeyModel> = BTreeMap::new();
    let mut rng = 0x1234_5678_9abc_def1u64;
    let started = Instant::now();
    let mut acked_total = 0usize;
    for i in 0..iterations {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash_writer"))
            .arg(&pattern)
            .arg(i.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn writer");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait until it is writing, then kill it at a random instant.
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(l) if l == "READY" => break,
                Ok(l) => lines.push(l),
                Err(_) if Instant::now() > deadline => {
                    let _ = child.kill();
                    panic!("writer did not become ready");
                }
                Err(_) => {}
            }
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_micros(rng % 120_000));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        reader.join().expect("reader");
        lines.extend(rx.try_iter());
        acked_total += lines.iter().filter(|l| l.starts_with("A ")).count();
        apply_output(&mut model, &lines);
        let t0 = Instant::now();
        // Every 10th round checks all keys; the others the keys this round touched.
        let touched: Vec<String> = lines
            .iter()
            .filter_map(|l| {
                l.strip_prefix("B ")
                    .and_then(|r| r.split_whitespace().next())
            })
            .map(str::to_owned)
            .collect();
        let keys = (i % 10 != 9).then_some(touched);
        rt.block_on(verify(&pattern, &mut model, &drives, keys));
        if std::env::var("CRASH_TIMING").is_ok() {
            eprintln!(
                "iteration {i}: {} lines, verify {:?}",
                lines.len(),
                t0.elapsed()
            );
        }
    }
    assert!(
        acked_total > iterations,
        "the writer made progress ({acked_total} acks)"
    );
    eprintln!(
        "crash test: {iterations} kills, {acked_total} acknowledged operations, {:?}",
        started.elapsed()
    );
}
