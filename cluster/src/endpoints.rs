//! Endpoint lists as an operator types them, MinIO style: `./data{1...4}`,
//! `http://node{1...4}:9000/d{1...2}`, or plain lists. Expands ellipses (the first ellipsis
//! varies fastest, so consecutive drives sit on different nodes), classifies each
//! endpoint as a local path or a URL, and decides which URLs this node serves itself (host
//! AND port compared, so several nodes may share one machine). Pure parsing: it must never
//! touch the file system or the network.

use std::path::PathBuf;

use crate::StoreError;

/// One drive's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A directory on this machine.
    Local(PathBuf),
    /// `scheme://host:port/path` — a drive on a node (possibly this one).
    Url {
        scheme: String,
        host: String,
        port: Option<u16>,
        path: String,
    },
}

impl Endpoint {
    /// Parses one expanded endpoint.
    pub fn parse(s: &str) -> Result<Endpoint, StoreError> {
        let bad = |why: &str| Err(StoreError::Config(format!("endpoint {s:?}: {why}")));
        if s.is_empty() {
            return bad("empty");
        }
        if let Some((scheme, rest)) = s.split_once("://") {
            if scheme != "http" && scheme != "https" {
                return bad("scheme must be http or https");
            }
            let (hostport, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => return bad("a URL endpoint needs a drive path"),
            };
            if path.len() < 2 {
                return bad("a URL endpoint needs a drive path");
            }
            let (host, port) = match hostport.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => {
                    match p.parse::<u16>() {
                        Ok(p) => (h, Some(p)),
                        Err(_) => return bad("invalid port"),
                    }
                }
                _ => (hostport, None),
            };
            if host.is_empty() {
                return bad("empty host");
            }
            return Ok(Endpoint::Url {
                scheme: scheme.to_owned(),
                host: host.to_owned(),
                port,
                path: path.to_owned(),
            });
        }
        Ok(Endpoint::Local(PathBuf::from(s)))
    }

    /// The local directory behind this endpoint when it is served by this process: a path,
    /// or a URL on `localhost`/`127.0.0.1` (until remote drives arrive).
    pub fn local_path(&self) -> Option<PathBuf> {
        match self {
            Endpoint::Local(p) => Some(p.clone()),
            Endpoint::Url { host, path, .. } if host == "localhost" || host == "127.0.0.1" => {
                Some(PathBuf::from(path))
            }
            Endpoint::Url { .. } => None,
        }
    }
}

impl Endpoint {
    /// The local directory behind this endpoint when this node serves it. `own` lists the
    /// `(host, port)` names this node answers on; a URL is local when its host (ASCII
    /// case-insensitive, IPv6 brackets ignored) and port (default 80/443 by scheme) match
    /// one of them. `None` keeps the single-node rule of [`Endpoint::local_path`].
    pub fn served_here(&self, own: Option<&[(String, u16)]>) -> Option<PathBuf> {
        let Some(own) = own else {
            return self.local_path();
        };
        match self {
            Endpoint::Local(p) => Some(p.clone()),
            Endpoint::Url {
                scheme,
                host,
                port,
                path,
            } => {
                let port = port.unwrap_or(if scheme == "https" { 443 } else { 80 });
                let bare = |h: &str| h.trim_start_matches('[').trim_end_matches(']').to_owned();
                let host = bare(host);
                own.iter()
                    .any(|(h, p)| *p == port && bare(h).eq_ignore_ascii_case(&host))
                    .then(|| PathBuf::from(path))
            }
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Local(p) => write!(f, "{}", p.display()),
            Endpoint::Url {
                scheme,
                host,
                port: Some(port),
                path,
            } => write!(f, "{scheme}://{host}:{port}{path}"),
            Endpoint::Url {
                scheme, host, path, ..
            } => write!(f, "{scheme}://{host}{path}"),
        }
    }
}

/// Expands every argument (each may hold ellipses or be several whitespace-separated
/// endpoints) and parses the result. Duplicates are refused.
pub fn expand_endpoints(args: &[String]) -> Result<Vec<Endpoint>, StoreError> {
    let mut out = Vec::new();
    for arg in args {
        for word in arg.split_whitespace() {
            for e in expand_ellipses(word)? {
                out.push(Endpoint::parse(&e)?);
            }
        }
    }
    if out.is_empty() {
        return Err(StoreError::Config("no endpoints given".into()));
    }
    for (i, e) in out.iter().enumerate() {
        if out[..i].contains(e) {
            return Err(StoreError::Config(format!("endpoint {e} is listed twice")));
        }
    }
    Ok(out)
}

/// Expands `{a...b}` patterns: numeric (zero padding kept when the bounds are padded, e.g.
/// `{01...16}`) or single letters (`{a...d}`). With several patterns the first varies
/// fastest.
pub fn expand_ellipses(s: &str) -> Result<Vec<String>, StoreError> {
    // Split into literal pieces and alternatives.
    let mut pieces: Vec<Vec<String>> = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or_else(|| StoreError::Config(format!("endpoint {s:?}: unclosed '{{'")))?;
        pieces.push(vec![rest[..open].to_owned()]);
        pieces.push(expand_range(&rest[open + 1..close], s)?);
        rest = &rest[close + 1..];
    }
    if rest.contains('}') {
        return Err(StoreError::Config(format!("endpoint {s:?}: stray '}}'")));
    }
    pieces.push(vec![rest.to_owned()]);
    // Cartesian product, first alternative list varying fastest.
    let mut results = vec![String::new()];
    let total: usize = pieces.iter().map(Vec::len).product();
    if total > 65_536 {
        return Err(StoreError::Config(format!(
            "endpoint {s:?} expands to too many drives"
        )));
    }
    results.clear();
    for mut n in 0..total {
        let mut e = String::new();
        for p in &pieces {
            e.push_str(&p[n % p.len()]);
            n /= p.len();
        }
        results.push(e);
    }
    Ok(results)
}

fn expand_range(inner: &str, whole: &str) -> Result<Vec<String>, StoreError> {
    let bad = || StoreError::Config(format!("endpoint {whole:?}: invalid range {{{inner}}}"));
    let (a, b) = inner.split_once("...").ok_or_else(bad)?;
    if let (Ok(x), Ok(y)) = (a.parse::<u64>(), b.parse::<u64>()) {
        if x > y {
            return Err(bad());
        }
        let width = if a.starts_with('0') && a.len() > 1 {
            a.len()
        } else {
            0
        };
        return Ok((x..=y).map(|n| format!("{n:0width$}")).collect());
    }
    let (ac, bc) = (a.chars().collect::<Vec<_>>(), b.chars().collect::<Vec<_>>());
    if ac.len() == 1 && bc.len() == 1 && ac[0].is_ascii_alphabetic() && ac[0] <= bc[0] {
        return Ok((ac[0]..=bc[0]).map(String::from).collect());
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn local_ellipsis_expands_in_order() {
        assert_eq!(
            expand_ellipses("./data{1...4}").unwrap_or_default(),
            strs(&["./data1", "./data2", "./data3", "./data4"])
        );
        assert_eq!(
            expand_ellipses("/d{08...10}").unwrap_or_default(),
            strs(&["/d08", "/d09", "/d10"])
        );
        assert_eq!(
            expand_ellipses("/x{a...c}").unwrap_or_default(),
            strs(&["/xa", "/xb", "/xc"])
        );
    }

    #[test]
    fn urls_expand_with_the_first_pattern_fastest() {
        let e = expand_endpoints(&strs(&["http://node{1...4}:9000/d{1...2}"])).unwrap_or_default();
        assert_eq!(e.len(), 8);
        assert_eq!(e[0].to_string(), "http://node1:9000/d1");
        assert_eq!(e[1].to_string(), "http://node2:9000/d1");
        assert_eq!(e[4].to_string(), "http://node1:9000/d2");
        assert!(
            matches!(&e[7], Endpoint::Url { host, port: Some(9000), path, .. } if host == "node4" && path == "/d2")
        );
    }

    #[test]
    fn locality_compares_host_and_port() {
        let e = expand_endpoints(&strs(&["http://127.0.0.1:{9001...9002}/d1"])).unwrap_or_default();
        let own = vec![("127.0.0.1".to_owned(), 9002)];
        assert_eq!(e[0].served_here(Some(&own)), None);
        assert_eq!(e[1].served_here(Some(&own)), Some(PathBuf::from("/d1")));
        // Same port, different loopback addresses: only the node's own address is local.
        let e = expand_endpoints(&strs(&["http://127.0.0.{1...2}:9000/d"])).unwrap_or_default();
        let own = vec![("127.0.0.2".to_owned(), 9000)];
        assert_eq!(e[0].served_here(Some(&own)), None);
        assert!(e[1].served_here(Some(&own)).is_some());
        // Host names compare case-insensitively; a missing port is the scheme's default.
        let e = Endpoint::parse("http://Node1/d").expect("valid endpoint");
        assert!(e.served_here(Some(&[("node1".to_owned(), 80)])).is_some());
        assert!(e.served_here(Some(&[("node1".to_owned(), 443)])).is_none());
        // Paths are always local; without an identity, loopback URLs are (single node).
        let p = Endpoint::parse("/data").expect("valid endpoint");
        assert!(p.served_here(Some(&[])).is_some());
        let l = Endpoint::parse("http://127.0.0.1:9000/d").expect("valid endpoint");
        assert!(l.served_here(None).is_some());
        assert!(l.served_here(Some(&[])).is_none());
    }

    #[test]
    fn plain_lists_and_errors() {
        let e = expand_endpoints(&strs(&["/a", "/b /c"])).unwrap_or_default();
        assert_eq!(
            e,
            vec![
                Endpoint::Local("/a".into()),
                Endpoint::Local("/b".into()),
                Endpoint::Local("/c".into())
            ]
        );
        assert!(expand_endpoints(&strs(&["/a{1...2"])).is_err());
        assert!(expand_endpoints(&strs(&["/a{3...1}"])).is_err());
        assert!(expand_endpoints(&strs(&["/a", "/a"])).is_err());
        assert!(expand_endpoints(&strs(&["ftp://x/y"])).is_err());
        assert!(expand_endpoints(&[]).is_err());
    }
}
