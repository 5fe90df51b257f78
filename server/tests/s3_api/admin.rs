//! The admin API over a real socket: root-signed only (anything else gets 403 AccessDenied
//! XML), `GET /_tessera/admin/v1/heal` JSON per the contract, `POST .../heal/scan` runs a
//! scanner cycle, and a drive wiped while the server runs shows up as a bulk heal that
//! finishes with the drive back to `ok`.

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::Value;
use tessera_server::admin;

use crate::common::*;

async fn heal_status(t: &TestServer) -> Value {
    let (status, body) = admin::call(
        &t.endpoint,
        REGION,
        ACCESS_KEY,
        SECRET_KEY,
        Method::GET,
        admin::HEAL_PATH,
    )
    .await
    .expect("admin call");
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("json")
}

async fn wait_for(
    t: &TestServer,
    limit: Duration,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let v = heal_status(t).await;
        if check(&v) {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {what}: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn admin_api_needs_root_signatures() {
    let t = TestServer::start().await;
    let unsigned = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        admin::HEAL_PATH,
        t.host()
    );
    let r = raw(t.addr(), unsigned.as_bytes()).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("AccessDenied"));
    let (status, body) = admin::call(
        &t.endpoint,
        REGION,
        ACCESS_KEY,
        "not-the-secret",
        Method::GET,
        admin::HEAL_PATH,
    )
    .await
    .expect("call");
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&body).contains("<Code>AccessDenied</Code>"));
    let (status, _) = admin::call(
        &t.endpoint,
        REGION,
        ACCESS_KEY,
        SECRET_KEY,
        Method::GET,
        "/_tessera/admin/v1/nothing",
    )
    .await
    .expect("call");
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn heal_status_scan_and_bulk_heal_of_a_wiped_drive() {
    let t = TestServer::start().await;
    t.create_bucket("adm").await;
    for i in 0..8u64 {
        t.put("adm", &format!("k{i}"), bytes(100_000 + i as usize, i))
            .await;
    }
    let v = heal_status(&t).await;
    assert_eq!(v["redundancy_ok"], true, "{v:#}");
    assert_eq!(v["queue"]["pending"], 0);
    let drives = v["drives"].as_array().expect("drives");
    assert_eq!(drives.len(), 4);
    assert!(drives.iter().all(|d| d["state"] == "ok"), "{v:#}");
    assert_eq!(drives[2]["slot"], "0/2");
    assert_eq!(v["bulk"].as_array().map(Vec::len), Some(0));

    // A scan on request.
    let (status, _) = admin::call(
        &t.endpoint,
        REGION,
        ACCESS_KEY,
        SECRET_KEY,
        Method::POST,
        admin::SCAN_PATH,
    )
    .await
    .expect("scan");
    assert_eq!(status, StatusCode::ACCEPTED);
    let v = wait_for(&t, Duration::from_secs(20), "a scanner cycle", |v| {
        v["scanner"]["cycles"].as_u64() >= Some(1)
    })
    .await;
    assert_eq!(v["scanner"]["objects_scanned"], 8, "{v:#}");
    assert_eq!(v["scanner"]["objects_healed"], 0, "{v:#}");
    assert!(v["scanner"]["cycle_started"]
        .as_str()
        .is_some_and(|s| s.ends_with('Z')));

    // Wipe a drive: within one drive check it is re-formatted and bulk-healed.
    std::fs::remove_dir_all(t.dir.path().join("d3")).expect("wipe");
    let v = wait_for(&t, Duration::from_secs(30), "the bulk heal", |v| {
        v["bulk"][0]["state"] == "done"
    })
    .await;
    let job = &v["bulk"][0];
    assert!(
        job["drive"].as_str().is_some_and(|d| d.ends_with("d3")),
        "{v:#}"
    );
    assert_eq!(job["objects_healed"], 8, "{v:#}");
    assert_eq!(job["objects_failed"], 0, "{v:#}");
    assert!(job["started"].as_str().is_some());
    assert_eq!(v["redundancy_ok"], true, "{v:#}");
    assert_eq!(v["drives"][2]["state"], "ok");
    let table = admin::status_table(&v);
    assert!(table.contains("Redundancy: OK"), "{table}");
    assert!(table.contains("BULK HEAL"), "{table}");
    for i in 0..8u64 {
        assert_eq!(
            t.get_bytes("adm", &format!("k{i}")).await,
            bytes(100_000 + i as usize, i)
        );
    }
}
