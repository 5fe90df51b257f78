//! Configuration: the one typed [`Config`] the server runs with, built in one place from the
//! command line (clap) and the environment (credentials, `TESSERA_*` overrides), and printed at
//! start with secrets masked. This module never opens drives or sockets and never logs a secret.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The embedded default when no endpoints are given: one node, four drives (EC 2+2).
pub const DEFAULT_ENDPOINTS: &str = "./data/d{1...4}";
/// Development credentials used when no root credentials are configured (printed with a warning).
pub const DEV_ACCESS_KEY: &str = "tesseraadmin";
/// See [`DEV_ACCESS_KEY`].
pub const DEV_SECRET_KEY: &str = "tesseraadmin";
/// Default erasure block size (bytes) handed to the engine.
pub const DEFAULT_BLOCK_SIZE: usize = 1 << 20;

/// `tessera` command line.
#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "S3-compatible object store with erasure coding"
)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands of the `tessera` binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the S3 API on the given drives (MinIO ellipsis syntax: ./data{1...4}).
    Server(ServerArgs),
    /// Load-generate against an S3 endpoint: PUT/GET MB/s, ops/s, latency (see docs/bench.md).
    Bench(crate::bench::BenchArgs),
    /// Operate a running node: `tessera admin heal status|scan --endpoint URL`.
    Admin(crate::admin::AdminArgs),
}

/// Flags of `tessera server`.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Listen address, `HOST:PORT` or `:PORT` (all interfaces). Port 0 picks a free port.
    #[arg(long, env = "TESSERA_ADDRESS", default_value = ":9000")]
    pub address: String,
    /// Directory holding public.crt and private.key (PEM); enables HTTPS.
    #[arg(long, env = "TESSERA_CERTS_DIR")]
    pub certs_dir: Option<PathBuf>,
    /// Region this server answers for (signatures must be scoped to it).
    #[arg(long, env = "TESSERA_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Domain(s) for virtual-hosted-style requests (comma separated): Host `bucket.DOMAIN`.
    #[arg(long, env = "TESSERA_DOMAIN")]
    pub domain: Option<String>,
    /// Parity shards per erasure set (default: chosen from the set size as MinIO does).
    #[arg(long, env = "TESSERA_PARITY")]
    pub parity: Option<usize>,
    /// This node's name in the endpoint list, `HOST:PORT`, when it differs from the listen
    /// address (NAT, Kubernetes services, a proxy in front of each node). The endpoints
    /// naming exactly this `HOST:PORT` are this node's drives.
    #[arg(long = "self", env = "TESSERA_SELF", value_name = "HOST:PORT")]
    pub self_name: Option<String>,
    /// Accepted for MinIO command-line compatibility and ignored (there is no console).
    #[arg(long, hide = true)]
    pub console_address: Option<String>,
    /// Drives, e.g. `./data{1...4}` or `http://node{1...4}:9000/data{1...2}`.
    pub endpoints: Vec<String>,
}

/// Where the root credentials came from (for the banner's warning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// `TESSERA_ROOT_USER` / `TESSERA_ROOT_PASSWORD`.
    Tessera,
    /// `MINIO_ROOT_USER` / `MINIO_ROOT_PASSWORD`.
    Minio,
    /// Nothing configured: the development default.
    DevelopmentDefault,
}

/// The root key pair. `Debug`/`Display` mask the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct RootCredentials {
    /// Access key id.
    pub access_key: String,
    /// Secret key; never logged.
    pub secret_key: String,
    /// Where these came from.
    pub source: CredentialSource,
}

impl fmt::Debug for RootCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootCredentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &mask(&self.secret_key))
            .field("source", &self.source)
            .finish()
    }
}

/// TLS material location (MinIO layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind.
    pub address: SocketAddr,
    /// HTTPS when set.
    pub tls: Option<TlsPaths>,
    /// Region name (signing scope, GetBucketLocation).
    pub region: String,
    /// Virtual-host domains (lowercase, no port).
    pub domains: Vec<String>,
    /// Parity override.
    pub parity: Option<usize>,
    /// Drive endpoints as typed (ellipses expanded by the engine).
    pub endpoints: Vec<String>,
    /// Erasure block size in bytes.
    pub block_size: usize,
    /// Root credentials.
    pub credentials: RootCredentials,
    /// `--self`: this node's `(host, port)` in the endpoint list (several nodes only).
    pub self_name: Option<(String, u16)>,
    /// `TESSERA_PROBE_INTERVAL_MS`: the heartbeat interval of an online peer node and the
    /// longest wait between probes of an offline one (default 2 s).
    pub probe_max: Option<std::time::Duration>,
    /// `TESSERA_INTERNODE_TRANSPORT=http2`: internode calls multiplexed over one HTTP/2
    /// connection per peer instead of a pool of HTTP/1.1 connections (the default, `http1`).
    pub internode_http2: bool,
}

/// Invalid configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--address` does not parse.
    #[error("invalid --address {0:?}: expected HOST:PORT or :PORT")]
    Address(String),
    /// A credential is set but empty or too short.
    #[error("invalid root credentials: {0}")]
    Credentials(String),
    /// `--certs-dir` lacks a file.
    #[error("TLS: {0} not found (expected public.crt and private.key)")]
    CertsMissing(PathBuf),
    /// `--region` is empty.
    #[error("region must not be empty")]
    Region,
    /// `--self` is not `HOST:PORT`.
    #[error("invalid --self {0:?}: expected HOST:PORT as the endpoint list names this node")]
    SelfName(String),
    /// A numeric environment setting does not parse.
    #[error("invalid {name}={value:?}: expected {expected}")]
    Env {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
}

impl Config {
    /// Builds the config from parsed flags and a process-environment lookup.
    pub fn from_args(
        args: &ServerArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let address = parse_address(&args.address)?;
        let tls = match &args.certs_dir {
            None => None,
            Some(dir) => {
                let cert = dir.join("public.crt");
                let key = dir.join("private.key");
                for p in [&cert, &key] {
                    if !p.is_file() {
                        return Err(ConfigError::CertsMissing(p.clone()));
                    }
                }
                Some(TlsPaths { cert, key })
            }
        };
        if args.region.trim().is_empty() {
            return Err(ConfigError::Region);
        }
        let domains = args
            .domain
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        let endpoints = if args.endpoints.is_empty() {
            vec![DEFAULT_ENDPOINTS.to_string()]
        } else {
            args.endpoints.clone()
        };
        let self_name = args.self_name.as_deref().map(parse_self).transpose()?;
        let probe_max = match env("TESSERA_PROBE_INTERVAL_MS") {
            None => None,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Some(std::time::Duration::from_millis(ms)),
                _ => {
                    return Err(ConfigError::Env {
                        name: "TESSERA_PROBE_INTERVAL_MS",
                        value: v,
                        expected: "a positive number of milliseconds",
                    })
                }
            },
        };
        let internode_http2 = match env("TESSERA_INTERNODE_TRANSPORT").as_deref() {
            None | Some("http1") => false,
            Some("http2") => true,
            Some(other) => {
                return Err(ConfigError::Env {
                    name: "TESSERA_INTERNODE_TRANSPORT",
                    value: other.to_string(),
                    expected: "http1 or http2",
                })
            }
        };
        Ok(Config {
            address,
            tls,
            region: args.region.trim().to_string(),
            domains,
            parity: args.parity,
            endpoints,
            block_size: DEFAULT_BLOCK_SIZE,
            credentials: root_credentials(&env)?,
            self_name,
            probe_max,
            internode_http2,
        })
    }

    /// A config for tests and embedding: given drives, 127.0.0.1:0, given credentials.
    pub fn for_drives(endpoints: Vec<String>, access_key: &str, secret_key: &str) -> Config {
        Config {
            address: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            tls: None,
            region: "us-east-1".to_string(),
            domains: Vec::new(),
            parity: None,
            endpoints,
            block_size: DEFAULT_BLOCK_SIZE,
            credentials: RootCredentials {
                access_key: access_key.to_string(),
                secret_key: secret_key.to_string(),
                source: CredentialSource::Tessera,
            },
            self_name: None,
            probe_max: None,
            internode_http2: false,
        }
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "address={} self={} tls={} region={} domains={:?} parity={} endpoints={:?} \
             block_size={} access_key={} secret_key={} credentials_from={:?}",
            self.address,
            self.self_name
                .as_ref()
                .map(|(h, p)| format!("{h}:{p}"))
                .unwrap_or_else(|| "-".into()),
            self.tls
                .as_ref()
                .map(|t| t.cert.display().to_string())
                .unwrap_or_else(|| "off".into()),
            self.region,
            self.domains,
            self.parity
                .map(|p| p.to_string())
                .unwrap_or_else(|| "auto".into()),
            self.endpoints,
            self.block_size,
            self.credentials.access_key,
            mask(&self.credentials.secret_key),
            self.credentials.source,
        )
    }
}

/// Masks a secret for display: first two characters, then asterisks.
pub fn mask(secret: &str) -> String {
    let shown: String = secret.chars().take(2).collect();
    format!("{shown}******")
}

/// `:9000` → 0.0.0.0:9000; `HOST:PORT` resolved (first address).
pub fn parse_address(s: &str) -> Result<SocketAddr, ConfigError> {
    let s = s.trim();
    if let Some(port) = s.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .map_err(|_| ConfigError::Address(s.to_string()))?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    s.to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| ConfigError::Address(s.to_string()))
}

/// `--self HOST:PORT` (`[v6]:PORT` for an IPv6 literal): the host as written, the port.
pub fn parse_self(s: &str) -> Result<(String, u16), ConfigError> {
    let bad = || ConfigError::SelfName(s.to_string());
    let (host, port) = s.trim().rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 || host.contains('/') {
        return Err(bad());
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// Root credentials: TESSERA_ROOT_*, else MINIO_ROOT_*, else the development default.
pub fn root_credentials(
    env: impl Fn(&str) -> Option<String>,
) -> Result<RootCredentials, ConfigError> {
    let pairs = [
        (
            "TESSERA_ROOT_USER",
            "TESSERA_ROOT_PASSWORD",
            CredentialSource::Tessera,
        ),
        (
            "MINIO_ROOT_USER",
            "MINIO_ROOT_PASSWORD",
            CredentialSource::Minio,
        ),
    ];
    for (user_var, pass_var, source) in pairs {
        match (env(user_var), env(pass_var)) {
            (None, None) => continue,
            (Some(user), Some(pass)) => {
                if user.len() < 3 {
                    return Err(ConfigError::Credentials(format!(
                        "{user_var} must be at least 3 characters"
                    )));
                }
                if pass.len() < 8 {
                    return Err(ConfigError::Credentials(format!(
                        "{pass_var} must be at least 8 characters"
                    )));
                }
                return Ok(RootCredentials {
                    access_key: user,
                    secret_key: pass,
                    source,
                });
            }
            _ => {
                return Err(ConfigError::Credentials(format!(
                    "set both {user_var} and {pass_var}, or neither"
                )))
            }
        }
    }
    Ok(RootCredentials {
        access_key: DEV_ACCESS_KEY.to_string(),
        secret_key: DEV_SECRET_KEY.to_string(),
        source: CredentialSource::DevelopmentDefault,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn colon_port_means_all_interfaces() {
        assert_eq!(
            parse_address(":9000").unwrap(),
            "0.0.0.0:9000".parse().unwrap()
        );
        assert_eq!(
            parse_address("127.0.0.1:0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert!(parse_address(":notaport").is_err());
    }

    #[test]
    fn tessera_credentials_win_over_minio_ones() {
        let c = root_credentials(env_of(&[
            ("TESSERA_ROOT_USER", "alice"),
            ("TESSERA_ROOT_PASSWORD", "alicesecret"),
            ("MINIO_ROOT_USER", "bob"),
            ("MINIO_ROOT_PASSWORD", "bobsecret"),
        ]))
        .unwrap();
        assert_eq!(c.access_key, "alice");
        assert_eq!(c.source, CredentialSource::Tessera);
    }

    #[test]
    fn minio_credentials_are_accepted() {
        let c = root_credentials(env_of(&[
            ("MINIO_ROOT_USER", "bob"),
            ("MINIO_ROOT_PASSWORD", "bobsecret"),
        ]))
        .unwrap();
        assert_eq!(c.access_key, "bob");
        assert_eq!(c.source, CredentialSource::Minio);
    }

    #[test]
    fn no_credentials_fall_back_to_the_development_default() {
        let c = root_credentials(env_of(&[])).unwrap();
        assert_eq!(c.source, CredentialSource::DevelopmentDefault);
        assert_eq!(c.access_key, DEV_ACCESS_KEY);
    }

    #[test]
    fn half_configured_credentials_are_rejected() {
        assert!(root_credentials(env_of(&[("TESSERA_ROOT_USER", "alice")])).is_err());
        assert!(root_credentials(env_of(&[
            ("TESSERA_ROOT_USER", "alice"),
            ("TESSERA_ROOT_PASSWORD", "short")
        ]))
        .is_err());
    }

    #[test]
    fn command_line_parses_minio_style_invocations() {
        let cli = Cli::try_parse_from([
            "tessera",
            "server",
            "--console-address",
            ":9001",
            "--address",
            "127.0.0.1:0",
            "--domain",
            "S3.Example.Test,other.test",
            "./data{1...4}",
        ])
        .unwrap();
        let Command::Server(args) = cli.command else {
            panic!("not the server subcommand")
        };
        let cfg = Config::from_args(&args, |_| None).unwrap();
        assert_eq!(cfg.endpoints, vec!["./data{1...4}".to_string()]);
        assert_eq!(
            cfg.domains,
            vec!["s3.example.test".to_string(), "other.test".to_string()]
        );
        assert_eq!(cfg.region, "us-east-1");
        let cli = Cli::try_parse_from(["tessera", "server"]).unwrap();
        let Command::Server(args) = cli.command else {
            panic!("not the server subcommand")
        };
        let cfg = Config::from_args(&args, |_| None).unwrap();
        assert_eq!(cfg.endpoints, vec![DEFAULT_ENDPOINTS.to_string()]);
        assert_eq!(cfg.address.port(), 9000);
        let cli = Cli::try_parse_from(["tessera", "server", "--certs-dir", "/nonexistent-certs"])
            .unwrap();
        let Command::Server(args) = cli.command else {
            panic!("not the server subcommand")
        };
        assert!(matches!(
            Config::from_args(&args, |_| None),
            Err(ConfigError::CertsMissing(_))
        ));
    }

    #[test]
    fn self_names_this_node_as_the_endpoint_list_does() {
        let cli = Cli::try_parse_from([
            "tessera",
            "server",
            "--address",
            "127.0.0.11:9000",
            "--self",
            "127.0.0.1:9000",
            "http://127.0.0.{1...4}:9000/d{1...2}",
        ])
        .unwrap();
        let Command::Server(args) = cli.command else {
            panic!("not the server subcommand")
        };
        let cfg = Config::from_args(
            &args,
            env_of(&[
                ("TESSERA_PROBE_INTERVAL_MS", "500"),
                ("TESSERA_INTERNODE_TRANSPORT", "http2"),
            ]),
        )
        .unwrap();
        assert!(cfg.internode_http2);
        assert_eq!(cfg.self_name, Some(("127.0.0.1".to_string(), 9000)));
        assert_eq!(cfg.probe_max, Some(std::time::Duration::from_millis(500)));
        assert!(cfg.to_string().contains("self=127.0.0.1:9000"));
        assert_eq!(
            parse_self("node-1.svc:9000").unwrap(),
            ("node-1.svc".to_string(), 9000)
        );
        assert_eq!(
            parse_self("[::1]:9000").unwrap(),
            ("[::1]".to_string(), 9000)
        );
        for bad in [
            "9000",
            ":9000",
            "host:",
            "host:0",
            "::1:9000",
            "h/x:1",
            "host:port",
        ] {
            assert!(parse_self(bad).is_err(), "{bad} accepted");
        }
        let mut args = args;
        args.self_name = None;
        assert!(matches!(
            Config::from_args(&args, env_of(&[("TESSERA_PROBE_INTERVAL_MS", "soon")])),
            Err(ConfigError::Env { .. })
        ));
    }

    #[test]
    fn display_masks_the_secret() {
        let cfg = Config::for_drives(vec!["/d".into()], "access", "verysecretvalue");
        let shown = cfg.to_string();
        assert!(!shown.contains("verysecretvalue"));
        assert!(format!("{cfg:?}").find("verysecretvalue").is_none());
    }
}
