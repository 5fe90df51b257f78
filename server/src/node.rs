//! Which node this process is among the endpoints: whether the deployment is multi-node at
//! all ([`is_multi_node`]), which `host:port` names are this node's own ([`own_addresses`],
//! from the bound listener address, or `--self`), and the engine's [`NodeConfig`] built from
//! the server's [`Config`] ([`node_config`]: identity, internode key, source address of
//! internode connections, probe ceiling). Name resolution and configuration only; it never
//! opens drives, never binds a listening socket, and never decides quorum.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use cluster::endpoints::{expand_endpoints, Endpoint};
use cluster::rpc::{InternodeKey, Transport};
use cluster::NodeConfig;

use crate::config::Config;
use crate::tls::TlsError;

/// `(host, port)` of every URL endpoint, port defaulted by scheme, without duplicates.
fn url_hosts(endpoints: &[Endpoint]) -> BTreeSet<(String, u16)> {
    endpoints
        .iter()
        .filter_map(|e| match e {
            Endpoint::Url {
                scheme, host, port, ..
            } => Some((
                host.clone(),
                port.unwrap_or(if scheme == "https" { 443 } else { 80 }),
            )),
            Endpoint::Local(_) => None,
        })
        .collect()
}

/// Expands the endpoint arguments (ellipses) into endpoints.
pub fn expand(args: &[String]) -> Result<Vec<Endpoint>, cluster::StoreError> {
    expand_endpoints(args)
}

/// A deployment is multi-node when its URL endpoints name more than one `host:port`.
/// Local paths, or URLs that all name one `host:port`, are a single node: it opens its
/// store before it binds, and never uses the internode RPC.
pub fn is_multi_node(endpoints: &[Endpoint]) -> bool {
    url_hosts(endpoints).len() > 1
}

/// `true` when `ip` is an address of this machine: loopback, or one a socket can bind to.
fn is_local_ip(ip: IpAddr) -> bool {
    ip.is_loopback() || std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// The `(host, port)` names among `endpoints` that are this node's, given the address the
/// listener is bound on. A URL endpoint's `host:port` is ours when its port equals the bound
/// port and its host (an IP literal, or a name resolved by the system resolver) is
/// - the bound IP exactly, when the listener is bound on one IP (`--address 127.0.0.2:9000`
///   claims `http://127.0.0.2:9000/...` and nothing on 127.0.0.1), or
/// - any address of this machine (loopback or an interface address), when the listener is
///   bound on all interfaces (`0.0.0.0` / `[::]`).
///
/// The bound address itself is always included.
pub async fn own_addresses(bound: SocketAddr, endpoints: &[Endpoint]) -> Vec<(String, u16)> {
    let mut own = vec![(bound.ip().to_string(), bound.port())];
    for (host, port) in url_hosts(endpoints) {
        if port != bound.port() {
            continue;
        }
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let ips: Vec<IpAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => match tokio::net::lookup_host((bare.as_str(), port)).await {
                Ok(addrs) => addrs.map(|a| a.ip()).collect(),
                Err(e) => {
                    tracing::warn!(host = %host, error = %e, "cannot resolve an endpoint host");
                    Vec::new()
                }
            },
        };
        let ours = if bound.ip().is_unspecified() {
            ips.iter().any(|ip| is_local_ip(*ip))
        } else {
            ips.contains(&bound.ip())
        };
        if ours && !own.contains(&(host.clone(), port)) {
            own.push((host, port));
        }
    }
    own
}

/// The engine's view of this node: its names in the endpoint list (the bound address, and
/// `--self` when given, else what [`own_addresses`] finds), the internode key, and — when the
/// listener is bound to one IP rather than all interfaces — that IP as the source address of
/// every internode connection, so peers and proxies can tell which node connects.
/// With `--certs-dir`, internode calls to `https://` peers trust the system roots, every
/// PEM certificate in `<certs-dir>/CAs/` and this node's own `public.crt`.
/// `TESSERA_PROBE_INTERVAL_MS` sets the liveness heartbeat interval for the process;
/// `TESSERA_INTERNODE_TRANSPORT=http2` multiplexes internode calls over HTTP/2.
pub async fn node_config(
    config: &Config,
    bound: SocketAddr,
    endpoints: &[Endpoint],
    key: InternodeKey,
) -> Result<NodeConfig, TlsError> {
    let own = match &config.self_name {
        Some(name) => {
            let mut own = vec![(bound.ip().to_string(), bound.port())];
            if !own.contains(name) {
                own.push(name.clone());
            }
            own
        }
        None => own_addresses(bound, endpoints).await,
    };
    if let Some(max) = config.probe_max {
        cluster::drive::liveness::set_probe_max(max);
    }
    let tls = match &config.tls {
        None => None,
        Some(paths) => {
            let cas = paths
                .cert
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join("CAs");
            let (tls, trust) =
                cluster::rpc::tls::client_config(&paths.cert, &cas).map_err(|e| {
                    TlsError::Read {
                        path: cas.display().to_string(),
                        reason: format!("internode trust store: {e}"),
                    }
                })?;
            tracing::info!(
                system_roots = trust.system,
                cas = trust.cas,
                own = trust.own,
                "internode TLS: https peers verified against these certificates"
            );
            Some(tls)
        }
    };
    Ok(NodeConfig {
        local_addresses: Some(own),
        internode_key: Some(key),
        source_ip: source_ip(bound),
        tls,
        transport: if config.internode_http2 {
            Transport::Http2
        } else {
            Transport::Http1
        },
        ..NodeConfig::default()
    })
}

/// The source IP of internode connections: the listener's, when it is one IP.
pub fn source_ip(bound: SocketAddr) -> Option<IpAddr> {
    (!bound.ip().is_unspecified()).then_some(bound.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(list: &[&str]) -> Vec<Endpoint> {
        expand(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("endpoints")
    }

    #[test]
    fn local_paths_and_one_url_host_are_single_node() {
        assert!(!is_multi_node(&eps(&["/tmp/x/d{1...4}"])));
        assert!(!is_multi_node(&eps(&[
            "http://127.0.0.1:9000/tmp/d{1...4}"
        ])));
        assert!(is_multi_node(&eps(&[
            "http://127.0.0.{1...4}:9000/tmp/d{1...2}"
        ])));
        assert!(is_multi_node(&eps(&[
            "http://127.0.0.1:{9001...9004}/tmp/d{1...2}"
        ])));
    }

    #[tokio::test]
    async fn an_explicit_address_claims_only_its_own_ip_and_port() {
        let e = eps(&["http://127.0.0.{1...4}:9000/tmp/d{1...2}"]);
        let own = own_addresses("127.0.0.2:9000".parse().unwrap(), &e).await;
        assert_eq!(own, vec![("127.0.0.2".to_owned(), 9000)]);
        let e = eps(&["http://127.0.0.1:{9001...9004}/tmp/d{1...2}"]);
        let own = own_addresses("127.0.0.1:9003".parse().unwrap(), &e).await;
        assert_eq!(own, vec![("127.0.0.1".to_owned(), 9003)]);
    }

    #[tokio::test]
    async fn self_decides_which_endpoints_are_this_nodes() {
        let e = eps(&["http://127.0.0.{1...4}:9000/tmp/d{1...2}"]);
        let mut config = Config::for_drives(Vec::new(), "access", "secret-key");
        config.self_name = Some(("127.0.0.2".to_owned(), 9000));
        let key = InternodeKey::derive("access", "secret-key");
        let bound: SocketAddr = "127.0.0.12:9000".parse().unwrap();
        let n = node_config(&config, bound, &e, key.clone())
            .await
            .expect("no TLS to load");
        assert_eq!(
            n.local_addresses,
            Some(vec![
                ("127.0.0.12".to_owned(), 9000),
                ("127.0.0.2".to_owned(), 9000)
            ])
        );
        assert_eq!(n.source_ip, Some("127.0.0.12".parse().unwrap()));
        // All interfaces: no source binding.
        config.self_name = None;
        let n = node_config(&config, "0.0.0.0:9000".parse().unwrap(), &e, key)
            .await
            .expect("no TLS to load");
        assert_eq!(n.source_ip, None);
    }

    #[tokio::test]
    async fn all_interfaces_claims_local_hosts_on_the_bound_port() {
        let e = eps(&[
            "http://localhost:9002/tmp/a",
            "http://127.0.0.1:9002/tmp/b",
            "http://192.0.2.1:9002/tmp/c",
            "http://127.0.0.1:9003/tmp/d",
        ]);
        let own = own_addresses("0.0.0.0:9002".parse().unwrap(), &e).await;
        assert!(own.contains(&("127.0.0.1".to_owned(), 9002)), "{own:?}");
        assert!(own.contains(&("localhost".to_owned(), 9002)), "{own:?}");
        assert!(!own.iter().any(|(h, _)| h == "192.0.2.1"), "{own:?}");
        assert!(!own.iter().any(|(_, p)| *p == 9003), "{own:?}");
    }
}
