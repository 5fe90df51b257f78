//! Test harness: starts a server on fresh temporary drives, builds an aws-sdk-s3 client for
//! it, and offers a tiny raw HTTP/1.1 client. Everything is torn down when the [`TestServer`]
//! drops (temp dirs removed, server task ends with the test's runtime).

#![allow(dead_code)]

use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use tessera_server::{Config, RunningServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const ACCESS_KEY: &str = "testaccesskey";
pub const SECRET_KEY: &str = "testsecretkey123";
pub const REGION: &str = "us-east-1";

/// A running server and its drives.
pub struct TestServer {
    pub server: RunningServer,
    pub endpoint: String,
    pub client: Client,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// Four drives, EC 2+2, plain HTTP.
    pub async fn start() -> TestServer {
        Self::start_with(|_, _| {}).await
    }

    /// As [`TestServer::start`], with the config adjusted first.
    pub async fn start_with(adjust: impl FnOnce(&mut Config, &std::path::Path)) -> TestServer {
        if std::env::var_os("TESSERA_TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_env("TESSERA_TEST_LOG"))
                .with_test_writer()
                .with_ansi(false)
                .try_init();
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let drives = format!("{}/d{{1...4}}", dir.path().display());
        let mut config = Config::for_drives(vec![drives], ACCESS_KEY, SECRET_KEY);
        adjust(&mut config, dir.path());
        let server = tessera_server::start(config).await.expect("server starts");
        let endpoint = server.endpoint();
        let client = sdk_client(&endpoint, None);
        TestServer {
            server,
            endpoint,
            client,
            dir,
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.local_addr
    }

    /// Host header value for raw requests.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.addr().port())
    }

    pub async fn create_bucket(&self, name: &str) {
        self.client
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .expect("create bucket");
    }

    pub async fn put(&self, bucket: &str, key: &str, data: impl Into<Vec<u8>>) -> String {
        let out = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(data.into().into())
            .send()
            .await
            .expect("put object");
        out.e_tag().unwrap_or_default().to_string()
    }

    pub async fn get_bytes(&self, bucket: &str, key: &str) -> Vec<u8> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .expect("get object");
        out.body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .to_vec()
    }

    /// Keys in the bucket (through the engine, not HTTP).
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        let b = cluster::BucketName::new(bucket).unwrap();
        let page = self
            .server
            .store()
            .expect("single node: store open")
            .list_objects(
                &b,
                &cluster::ListQuery {
                    prefix: String::new(),
                    delimiter: None,
                    start_after: None,
                    max_keys: 1000,
                },
            )
            .await
            .expect("list");
        page.objects.into_iter().map(|o| o.key).collect()
    }
}

/// An SDK client for `endpoint` (path style, static credentials, ring TLS with an optional
/// extra trusted certificate).
pub fn sdk_client(endpoint: &str, trust_pem: Option<&str>) -> Client {
    let mut http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
    if let Some(pem) = trust_pem {
        let ctx = tls::TlsContext::builder()
            .with_trust_store(
                tls::TrustStore::empty().with_pem_certificate(pem.as_bytes().to_vec()),
            )
            .build()
            .expect("tls context");
        http = http.tls_context(ctx);
    }
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .http_client(http.build_https())
        .build();
    Client::from_conf(conf)
}

/// The S3 error code of an SDK error (`None` if the error carries none).
pub fn code<E>(e: &aws_sdk_s3::error::SdkError<E>) -> Option<String>
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
{
    match e {
        aws_sdk_s3::error::SdkError::ServiceError(s) => s.err().code().map(str::to_string),
        _ => None,
    }
}

/// The HTTP status of an SDK error's raw response.
pub fn status<E>(e: &aws_sdk_s3::error::SdkError<E>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// A parsed raw HTTP response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `<Code>` of an S3 error body.
    pub fn code(&self) -> Option<String> {
        let t = self.text();
        let s = t.find("<Code>")? + 6;
        let e = t[s..].find("</Code>")? + s;
        Some(t[s..e].to_string())
    }
}

/// Sends raw bytes (a complete request with `Connection: close`) and reads the response to EOF.
pub async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> RawResponse {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(request).await.expect("write");
        let mut buf = Vec::new();
        // The server may close early (e.g. after an error); read what arrived.
        let _ = s.read_to_end(&mut buf).await;
        parse_response(&buf)
    };
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .expect("raw request timed out")
}

/// Parses one HTTP/1.1 response (body = everything after the head, or Content-Length bytes).
pub fn parse_response(buf: &[u8]) -> RawResponse {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    if let Some(len) = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    RawResponse {
        status,
        headers,
        body,
    }
}

/// Deterministic pseudo-random bytes.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Hex MD5.
pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(data))
}

/// Child `tessera server` processes; each is SIGKILLed and reaped on drop.
pub struct Nodes(pub Vec<Option<std::process::Child>>);

impl Nodes {
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.0[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for i in 0..self.0.len() {
            self.kill(i);
        }
    }
}

/// `n` distinct free ports on 127.0.0.1 for child processes to bind.
pub fn free_ports(n: usize) -> Vec<u16> {
    // Held together so the OS hands out distinct ports, released just before the children bind.
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

/// A `tessera server` child on 127.0.0.1:`port` with `flags` then the shared `endpoints`,
/// the given root secret, none of the caller's TESSERA_/MINIO_ settings, warn-level logs
/// to [`node_log`]. Not spawned: callers add what their test needs.
pub fn node_command(
    port: u16,
    flags: &[&std::ffi::OsStr],
    endpoints: &[String],
    secret: &str,
) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
    c.arg("server")
        .arg("--address")
        .arg(format!("127.0.0.1:{port}"))
        .args(flags)
        .args(endpoints)
        .env("TESSERA_ROOT_USER", ACCESS_KEY)
        .env("TESSERA_ROOT_PASSWORD", secret)
        .env_remove("MINIO_ROOT_USER")
        .env_remove("MINIO_ROOT_PASSWORD")
        .env_remove("TESSERA_ADDRESS")
        .env_remove("TESSERA_CERTS_DIR")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(node_log(port));
    c
}

/// Where a node's log goes: `TESSERA_TEST_NODE_LOGS=<dir>` keeps one file per port.
pub fn node_log(port: u16) -> std::process::Stdio {
    std::env::var_os("TESSERA_TEST_NODE_LOGS")
        .and_then(|d| {
            std::fs::File::create(std::path::Path::new(&d).join(format!("{port}.log"))).ok()
        })
        .map(std::process::Stdio::from)
        .unwrap_or_else(std::process::Stdio::null)
}
