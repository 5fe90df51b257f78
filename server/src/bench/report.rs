//! Results of the load generator: the per-phase tally workers fill in ([`Tally`]), the finished
//! figures of one phase ([`Row`]: MB/s, ops/s, p50/p90/p99/max latency, errors by S3 error
//! code, listing pages and keys, ratios to the same-run baselines) and their two renderings, a
//! human table line and one JSON object per line. MB means 10^6 bytes. This module never
//! measures time or sends requests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// The error code of a GET whose body was not what had been written.
pub const CORRUPT: &str = "Corrupt";

/// What one worker saw during one phase.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Latency of each successful operation, microseconds.
    pub latencies_us: Vec<u32>,
    /// Payload bytes moved by successful operations.
    pub bytes: u64,
    /// Failed operations (any cause, wrong data included).
    pub errors: u64,
    /// Of `errors`: GETs whose body was not what had been written.
    pub corrupt: u64,
    /// Failures by S3 error code (or `Transport`, `Timeout`, `Corrupt`, `HTTP <status>`).
    pub errors_by_code: BTreeMap<String, u64>,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
}

impl Tally {
    /// Records a success of `bytes` payload bytes that took `took`.
    pub fn ok(&mut self, bytes: u64, took: Duration) {
        self.bytes += bytes;
        self.latencies_us
            .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
    }

    /// Records a failure with its error code (`Corrupt`: wrong data returned).
    pub fn error(&mut self, code: &str, what: impl FnOnce() -> String) {
        self.errors += 1;
        if code == CORRUPT {
            self.corrupt += 1;
        }
        *self.errors_by_code.entry(code.to_string()).or_default() += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what());
        }
    }

    /// Adds another worker's tally.
    pub fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.bytes += other.bytes;
        self.errors += other.errors;
        self.corrupt += other.corrupt;
        for (code, n) in other.errors_by_code {
            *self.errors_by_code.entry(code).or_default() += n;
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// The figures of one phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `put`, `get`, `delete`, `delete-batch`, `list`, `list-delim`, `mixed` and
    /// `mixed-<op>`, `baseline-health` (probe round trips on the same pool) or
    /// `baseline-sink` (bytes written to a loopback socket sink inside the bench).
    pub op: String,
    /// Object (or write) size in bytes.
    pub size: u64,
    /// Requests in flight.
    pub concurrency: usize,
    /// Successful operations.
    pub ops: u64,
    /// Failed operations.
    pub errors: u64,
    /// Of `errors`: wrong data returned.
    pub corrupt: u64,
    /// Payload bytes moved by successful operations.
    pub bytes: u64,
    /// Wall time of the phase, seconds.
    pub secs: f64,
    /// 10^6 bytes per second.
    pub mb_per_s: f64,
    /// Successful operations per second.
    pub ops_per_s: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 90th percentile latency, milliseconds.
    pub p90_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// Slowest operation, milliseconds.
    pub max_ms: f64,
    /// Failures by error code.
    pub errors_by_code: BTreeMap<String, u64>,
    /// Listing pages fetched (`list` rows; an operation there is one full listing).
    pub pages: u64,
    /// Keys (and common prefixes) returned by listings, or objects removed by DeleteObjects.
    pub keys: u64,
    /// `mb_per_s` over the loopback sink's MB/s at the same concurrency (with `--baseline`).
    pub mb_ratio: Option<f64>,
    /// `ops_per_s` over the health probe's ops/s at the same concurrency (with `--baseline`).
    pub ops_ratio: Option<f64>,
    /// The first error seen.
    pub first_error: Option<String>,
}

impl Row {
    /// Figures from a merged tally over `elapsed`.
    pub fn from_tally(
        op: &str,
        size: u64,
        concurrency: usize,
        mut tally: Tally,
        elapsed: Duration,
    ) -> Row {
        tally.latencies_us.sort_unstable();
        let secs = elapsed.as_secs_f64().max(1e-9);
        let ops = tally.latencies_us.len() as u64;
        Row {
            op: op.to_string(),
            size,
            concurrency,
            ops,
            errors: tally.errors,
            corrupt: tally.corrupt,
            bytes: tally.bytes,
            secs,
            mb_per_s: tally.bytes as f64 / secs / 1e6,
            ops_per_s: ops as f64 / secs,
            p50_ms: percentile_ms(&tally.latencies_us, 0.50),
            p90_ms: percentile_ms(&tally.latencies_us, 0.90),
            p99_ms: percentile_ms(&tally.latencies_us, 0.99),
            max_ms: percentile_ms(&tally.latencies_us, 1.0),
            errors_by_code: tally.errors_by_code,
            pages: 0,
            keys: 0,
            mb_ratio: None,
            ops_ratio: None,
            first_error: tally.first_error,
        }
    }

    /// The human table's header line.
    pub fn table_header() -> String {
        format!(
            "{:<16} {:>9} {:>4} {:>8} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7}",
            "op",
            "size",
            "conc",
            "ops",
            "err",
            "MB/s",
            "ops/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "xSink",
            "xHealth"
        )
    }

    /// The row as lines of the human table: the figures, then (indented) listing figures and
    /// errors by code when there are any.
    pub fn table_line(&self) -> String {
        let ratio = |r: Option<f64>| r.map_or_else(|| "-".to_string(), |r| format!("{r:.3}"));
        let mut s = format!(
            "{:<16} {:>9} {:>4} {:>8} {:>5} {:>9.1} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>7}",
            self.op,
            human_size(self.size),
            self.concurrency,
            self.ops,
            self.errors,
            self.mb_per_s,
            self.ops_per_s,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms,
            ratio(self.mb_ratio),
            ratio(self.ops_ratio),
        );
        if self.pages > 0 {
            let _ = write!(
                s,
                "\n    {} pages, {} keys: {:.1} pages/s, {:.0} keys/s (ops = full listings)",
                self.pages,
                self.keys,
                self.pages_per_s(),
                self.keys_per_s()
            );
        } else if self.keys > 0 {
            let _ = write!(
                s,
                "\n    {} objects deleted: {:.0} objects/s",
                self.keys,
                self.keys_per_s()
            );
        }
        if !self.errors_by_code.is_empty() {
            let codes: Vec<String> = self
                .errors_by_code
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect();
            let _ = write!(s, "\n    errors: {}", codes.join(", "));
        }
        s
    }

    /// Listing pages per second.
    pub fn pages_per_s(&self) -> f64 {
        self.pages as f64 / self.secs
    }

    /// Keys listed (or deleted in batches) per second.
    pub fn keys_per_s(&self) -> f64 {
        self.keys as f64 / self.secs
    }

    /// One JSON object (no trailing newline).
    pub fn json(&self) -> String {
        let num = |v: f64| {
            if v.is_finite() {
                format!("{v:.3}")
            } else {
                "null".to_string()
            }
        };
        let opt = |v: Option<f64>| v.map_or_else(|| "null".to_string(), num);
        let codes: Vec<String> = self
            .errors_by_code
            .iter()
            .map(|(c, n)| format!("{}:{n}", json_string(c)))
            .collect();
        let codes = format!("{{{}}}", codes.join(","));
        let mut s = String::new();
        let _ = write!(
            s,
            "{{\"op\":{},\"size\":{},\"concurrency\":{},\"ops\":{},\"errors\":{},\"corrupt\":{},\
             \"bytes\":{},\"secs\":{},\"mb_per_s\":{},\"ops_per_s\":{},\"p50_ms\":{},\"p90_ms\":{},\
             \"p99_ms\":{},\"max_ms\":{},\"pages\":{},\"keys\":{},\"pages_per_s\":{},\"keys_per_s\":{},\
             \"errors_by_code\":{},\"mb_ratio\":{},\"ops_ratio\":{},\"first_error\":{}}}",
            json_string(&self.op),
            self.size,
            self.concurrency,
            self.ops,
            self.errors,
            self.corrupt,
            self.bytes,
            num(self.secs),
            num(self.mb_per_s),
            num(self.ops_per_s),
            num(self.p50_ms),
            num(self.p90_ms),
            num(self.p99_ms),
            num(self.max_ms),
            self.pages,
            self.keys,
            num(self.pages_per_s()),
            num(self.keys_per_s()),
            codes,
            opt(self.mb_ratio),
            opt(self.ops_ratio),
            self.first_error
                .as_deref()
                .map_or_else(|| "null".to_string(), json_string),
        );
        s
    }
}

/// The `q` quantile (nearest rank) of sorted microsecond samples, in milliseconds; 0 if none.
pub fn percentile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    f64::from(sorted_us[rank - 1]) / 1000.0
}

/// `64MiB`, `4KiB`, or plain bytes.
pub fn human_size(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if n >= unit && n % unit == 0 {
            return format!("{}{name}", n / unit);
        }
    }
    format!("{n}B")
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_and_renderings() {
        let mut t = Tally::default();
        for ms in 1..=100u64 {
            t.ok(1_000_000, Duration::from_millis(ms));
        }
        t.error(CORRUPT, || "wrong \"data\"\n".to_string());
        let row = Row::from_tally("get", 1 << 20, 4, t, Duration::from_secs(2));
        assert_eq!(row.ops, 100);
        assert_eq!((row.errors, row.corrupt), (1, 1));
        assert!((row.mb_per_s - 50.0).abs() < 1e-9);
        assert!((row.ops_per_s - 50.0).abs() < 1e-9);
        assert!((row.p50_ms - 50.0).abs() < 1e-9);
        assert!((row.p90_ms - 90.0).abs() < 1e-9);
        assert!((row.p99_ms - 99.0).abs() < 1e-9);
        assert!((row.max_ms - 100.0).abs() < 1e-9);
        let json = row.json();
        assert!(
            json.starts_with("{\"op\":\"get\",\"size\":1048576,"),
            "{json}"
        );
        assert!(
            json.contains("\"first_error\":\"wrong \\\"data\\\"\\u000a\""),
            "{json}"
        );
        assert!(
            json.contains("\"errors_by_code\":{\"Corrupt\":1}"),
            "{json}"
        );
        assert!(row.table_line().contains("1MiB"));
        assert!(row.table_line().contains("errors: Corrupt 1"));
        assert_eq!(human_size(4096), "4KiB");
        assert_eq!(human_size(1000), "1000B");
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }
}
