//! Results of the load generator: the per-phase tally workers fill in ([`Tally`]), the finished
//! figures of one phase ([`Row`]: MB/s, ops/s, p50/p99 latency, errors, ratios to the same-run
//! baselines) and their two renderings, a human table line and one JSON object per line.
//! MB means 10^6 bytes. This module never measures time or sends requests.

use std::fmt::Write as _;
use std::time::Duration;

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

    /// Records a failure.
    pub fn error(&mut self, corrupt: bool, what: impl FnOnce() -> String) {
        self.errors += 1;
        if corrupt {
            self.corrupt += 1;
        }
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
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// The figures of one phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `put`, `get`, `baseline-health` (probe round trips on the same pool) or
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
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
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
            p99_ms: percentile_ms(&tally.latencies_us, 0.99),
            mb_ratio: None,
            ops_ratio: None,
            first_error: tally.first_error,
        }
    }

    /// The human table's header line.
    pub fn table_header() -> String {
        format!(
            "{:<16} {:>9} {:>4} {:>8} {:>5} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7}",
            "op",
            "size",
            "conc",
            "ops",
            "err",
            "MB/s",
            "ops/s",
            "p50 ms",
            "p99 ms",
            "xSink",
            "xHealth"
        )
    }

    /// One line of the human table.
    pub fn table_line(&self) -> String {
        let ratio = |r: Option<f64>| r.map_or_else(|| "-".to_string(), |r| format!("{r:.3}"));
        format!(
            "{:<16} {:>9} {:>4} {:>8} {:>5} {:>9.1} {:>9.1} {:>9.2} {:>9.2} {:>7} {:>7}",
            self.op,
            human_size(self.size),
            self.concurrency,
            self.ops,
            self.errors,
            self.mb_per_s,
            self.ops_per_s,
            self.p50_ms,
            self.p99_ms,
            ratio(self.mb_ratio),
            ratio(self.ops_ratio),
        )
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
        let mut s = String::new();
        let _ = write!(
            s,
            "{{\"op\":{},\"size\":{},\"concurrency\":{},\"ops\":{},\"errors\":{},\"corrupt\":{},\
             \"bytes\":{},\"secs\":{},\"mb_per_s\":{},\"ops_per_s\":{},\"p50_ms\":{},\"p99_ms\":{},\
             \"mb_ratio\":{},\"ops_ratio\":{},\"first_error\":{}}}",
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
            num(self.p99_ms),
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
        t.error(true, || "wrong \"data\"\n".to_string());
        let row = Row::from_tally("get", 1 << 20, 4, t, Duration::from_secs(2));
        assert_eq!(row.ops, 100);
        assert_eq!((row.errors, row.corrupt), (1, 1));
        assert!((row.mb_per_s - 50.0).abs() < 1e-9);
        assert!((row.ops_per_s - 50.0).abs() < 1e-9);
        assert!((row.p50_ms - 50.0).abs() < 1e-9);
        assert!((row.p99_ms - 99.0).abs() < 1e-9);
        let json = row.json();
        assert!(
            json.starts_with("{\"op\":\"get\",\"size\":1048576,"),
            "{json}"
        );
        assert!(
            json.contains("\"first_error\":\"wrong \\\"data\\\"\\u000a\""),
            "{json}"
        );
        assert!(row.table_line().contains("1MiB"));
        assert_eq!(human_size(4096), "4KiB");
        assert_eq!(human_size(1000), "1000B");
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }
}
