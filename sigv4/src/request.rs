//! [`RequestParts`]: the borrowed view of a request as received on the wire (method, raw path,
//! raw query, headers in arrival order), plus small header-lookup helpers. No HTTP crate types
//! are used here so the crate stays a pure leaf; nothing here decodes or normalizes the path.

/// A request as received on the wire.
///
/// `raw_path` and `raw_query` are exactly as sent (still percent-encoded, no leading `?` on the
/// query). `headers` are in arrival order; names may be in any case and may repeat.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// HTTP method, e.g. `"PUT"`.
    pub method: &'a str,
    /// Path as sent, e.g. `"/bucket/a%20b"`.
    pub raw_path: &'a str,
    /// Query as sent without the `?`, e.g. `"uploads&prefix=a%2Fb"`; empty when absent.
    pub raw_query: &'a str,
    /// Header (name, value) pairs as received.
    pub headers: &'a [(&'a str, &'a [u8])],
}

impl<'a> RequestParts<'a> {
    /// All values of header `name` (case-insensitive), in arrival order.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The first value of header `name` as UTF-8 (lossy-free: `None` if absent or not UTF-8).
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        self.header_values(name)
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}
