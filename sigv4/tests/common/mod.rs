//! Helpers shared by the sigv4 integration tests: a parsed HTTP request (owned) that can be
//! viewed as `RequestParts`, and locating the shared test vectors beside the repository.

#![allow(dead_code)]

use std::path::PathBuf;

use sigv4::RequestParts;

/// An owned request: method, raw path, raw query, headers in order, body.
#[derive(Debug, Clone)]
pub struct OwnedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl OwnedRequest {
    /// Parses the signing suite's `request.txt` format: request line, `Name:value` headers
    /// (continuation lines start with whitespace), blank line, body.
    pub fn parse_http(text: &str) -> OwnedRequest {
        let (head, body) = match text.find("\n\n") {
            Some(i) => (&text[..i], &text[i + 2..]),
            None => (text, ""),
        };
        let mut lines = head.lines();
        let request_line = lines.next().expect("request line");
        let (method, rest) = request_line.split_once(' ').expect("method");
        let target = rest.rsplit_once(' ').map(|(t, _)| t).unwrap_or(rest);
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
        for line in lines {
            if line.starts_with(' ') || line.starts_with('\t') {
                let last = headers.last_mut().expect("continuation after a header");
                last.1.push(b' ');
                last.1.extend_from_slice(line.trim().as_bytes());
                continue;
            }
            if let Some((n, v)) = line.split_once(':') {
                headers.push((n.to_string(), v.trim_start().as_bytes().to_vec()));
            }
        }
        OwnedRequest {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn header_refs(&self) -> Vec<(&str, &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect()
    }

    /// Calls `f` with a `RequestParts` view of this request.
    pub fn with_parts<R>(&self, f: impl FnOnce(&RequestParts) -> R) -> R {
        let headers = self.header_refs();
        let parts = RequestParts {
            method: &self.method,
            raw_path: &self.path,
            raw_query: &self.query,
            headers: &headers,
        };
        f(&parts)
    }
}

/// `<repo>/../shared/vectors/<name>`: the shared vectors live beside the clone. Returns None
/// (after printing a notice) when absent, and panics when absent under CI.
pub fn shared_vectors(name: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors")
        .join(name);
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("test vectors missing under CI: {}", dir.display());
    }
    eprintln!("NOTICE: {} absent, skipping", dir.display());
    None
}
