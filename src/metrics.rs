//! Every metric the relay exports, described and registered at start-up so that each is visible
//! (at zero) before anything happens. Per-listener handles are created once, so the hot path
//! only adds to atomics.

use std::sync::Arc;

use auditrelay_parsers::rfc3164::Dialect;
use auditrelay_parsers::Format;
use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
    Gauge, Unit,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const RECEIVED: &str = "auditrelay_received_messages_total";
pub const RECEIVED_BYTES: &str = "auditrelay_received_bytes_total";
pub const ACCEPTED: &str = "auditrelay_accepted_messages_total";
pub const DROPPED: &str = "auditrelay_dropped_messages_total";
pub const PARSED: &str = "auditrelay_parsed_messages_total";
pub const TRUNCATED: &str = "auditrelay_truncated_messages_total";
pub const CONNECTIONS_OPEN: &str = "auditrelay_open_connections";
pub const CONNECTIONS_REFUSED: &str = "auditrelay_refused_connections_total";
pub const TLS_CERT_EXPIRY: &str = "auditrelay_tls_certificate_expiry_timestamp_seconds";
pub const TLS_RELOADS: &str = "auditrelay_tls_reloads_total";
pub const BATCH_RECORDS: &str = "auditrelay_batch_records";
pub const BATCH_BYTES: &str = "auditrelay_batch_bytes";
pub const COMMIT_SECONDS: &str = "auditrelay_commit_duration_seconds";
pub const COMMIT_FAILURES: &str = "auditrelay_commit_failures_total";
pub const UDP_KERNEL_RCVBUF_ERRORS: &str = "auditrelay_udp_kernel_receive_buffer_errors_total";
pub const NEXT_SEQ: &str = "auditrelay_store_next_seq";

/// Why a message was dropped; each reason has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// UDP datagram arrived while the write path was full, by record count or by bytes.
    PipelineFull,
    /// UDP datagram arrived while free disk space was below `store.min_free_bytes`.
    DiskLow,
    /// The relay stopped before the message could be committed (UDP only; stream senders
    /// see the connection close without a commit).
    Shutdown,
}

impl DropReason {
    pub const ALL: [DropReason; 3] = [
        DropReason::PipelineFull,
        DropReason::DiskLow,
        DropReason::Shutdown,
    ];

    pub fn label(self) -> &'static str {
        match self {
            DropReason::PipelineFull => "pipeline_full",
            DropReason::DiskLow => "disk_low",
            DropReason::Shutdown => "shutdown",
        }
    }
}

const FORMATS: [Format; 3] = [Format::Rfc5424, Format::Rfc3164, Format::Raw];

/// Installs the Prometheus recorder and describes every metric.
pub fn install() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(BATCH_RECORDS.into()),
            &[1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0],
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(BATCH_BYTES.into()),
                &[256.0, 4096.0, 65536.0, 262_144.0, 1_048_576.0, 4_194_304.0],
            )
        })
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(COMMIT_SECONDS.into()),
                &[
                    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1,
                    0.25, 1.0,
                ],
            )
        })
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    describe();
    crate::forward::metrics::describe();
    crate::http::access::describe();
    Ok(handle)
}

fn describe() {
    describe_counter!(
        RECEIVED,
        "Messages (frames or datagrams) received, before commit."
    );
    describe_counter!(RECEIVED_BYTES, Unit::Bytes, "Message bytes received.");
    describe_counter!(
        ACCEPTED,
        "Messages committed (in a majority's fsync'd Raft logs, then applied): what 'accepted' means."
    );
    describe_counter!(DROPPED, "Messages received but not committed, by reason.");
    describe_counter!(
        PARSED,
        "Parse outcomes by format and dialect (raw = kept verbatim)."
    );
    describe_counter!(
        TRUNCATED,
        "Messages longer than the listener's maximum, kept truncated."
    );
    describe_gauge!(CONNECTIONS_OPEN, "Open stream connections.");
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections closed at once: over the limit or failed TLS handshake."
    );
    describe_gauge!(
        TLS_CERT_EXPIRY,
        Unit::Seconds,
        "Expiry (Unix time) of the certificate a TLS listener serves."
    );
    describe_counter!(TLS_RELOADS, "TLS certificate reloads, by outcome.");
    describe_histogram!(BATCH_RECORDS, "Records per committed batch.");
    describe_histogram!(BATCH_BYTES, Unit::Bytes, "Bytes per committed batch.");
    describe_histogram!(
        COMMIT_SECONDS,
        Unit::Seconds,
        "Time to commit a batch: proposed, fsync'd by a majority, applied to the store."
    );
    describe_counter!(COMMIT_FAILURES, "Failed commit attempts (retried).");
    describe_counter!(
        UDP_KERNEL_RCVBUF_ERRORS,
        "UDP datagrams the kernel dropped for full receive buffers (all sockets, /proc/net/snmp)."
    );
    describe_gauge!(NEXT_SEQ, "The seq the next committed record gets.");
    // Registering the handles is what makes them visible before the first batch.
    let _ = histogram!(BATCH_RECORDS);
    let _ = histogram!(BATCH_BYTES);
    let _ = histogram!(COMMIT_SECONDS);
    counter!(COMMIT_FAILURES).absolute(0);
    counter!(UDP_KERNEL_RCVBUF_ERRORS).absolute(0);
    gauge!(NEXT_SEQ).set(0.0);
}

/// The handles of one listener, created (and so exported at zero) when the listener starts.
pub struct ListenerMetrics {
    pub name: Arc<str>,
    pub received: Counter,
    pub received_bytes: Counter,
    pub accepted: Counter,
    pub truncated: Counter,
    pub connections_open: Gauge,
    pub connections_refused: Counter,
    dropped: [Counter; DropReason::ALL.len()],
    /// Indexed by format, then dialect (`None` last).
    parsed: Vec<Counter>,
}

impl ListenerMetrics {
    pub fn new(name: &str, transport: &'static str) -> Arc<ListenerMetrics> {
        let l = || {
            [
                ("listener", name.to_string()),
                ("transport", transport.to_string()),
            ]
        };
        let mut parsed = Vec::new();
        for format in FORMATS {
            for dialect in Dialect::ALL.iter().map(|d| Some(*d)).chain([None]) {
                let mut labels = l().to_vec();
                labels.push(("format", format.name().to_string()));
                labels.push(("dialect", dialect.map_or("none", Dialect::name).to_string()));
                parsed.push(counter!(PARSED, &labels));
            }
        }
        let metrics = ListenerMetrics {
            name: Arc::from(name),
            received: counter!(RECEIVED, &l()),
            received_bytes: counter!(RECEIVED_BYTES, &l()),
            accepted: counter!(ACCEPTED, &l()),
            truncated: counter!(TRUNCATED, &l()),
            connections_open: gauge!(CONNECTIONS_OPEN, &l()),
            connections_refused: counter!(CONNECTIONS_REFUSED, &l()),
            dropped: DropReason::ALL.map(|r| {
                let mut labels = l().to_vec();
                labels.push(("reason", r.label().to_string()));
                counter!(DROPPED, &labels)
            }),
            parsed,
        };
        for c in metrics.parsed.iter().chain(&metrics.dropped) {
            c.increment(0);
        }
        for c in [
            &metrics.received,
            &metrics.received_bytes,
            &metrics.accepted,
            &metrics.truncated,
            &metrics.connections_refused,
        ] {
            c.increment(0);
        }
        metrics.connections_open.set(0.0);
        Arc::new(metrics)
    }

    pub fn dropped(&self, reason: DropReason) -> &Counter {
        &self.dropped[DropReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0)]
    }

    pub fn parsed(&self, format: Format, dialect: Option<Dialect>) -> &Counter {
        let f = FORMATS.iter().position(|x| *x == format).unwrap_or(2);
        let d = dialect
            .and_then(|dialect| Dialect::ALL.iter().position(|x| *x == dialect))
            .unwrap_or(Dialect::ALL.len());
        &self.parsed[f * (Dialect::ALL.len() + 1) + d]
    }
}

/// The kernel's count of UDP datagrams dropped for full receive buffers (`RcvbufErrors` in
/// /proc/net/snmp). It covers every socket on the host, not only ours.
pub fn read_udp_rcvbuf_errors() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let names: Vec<&str> = udp.next()?.split_whitespace().collect();
    let values: Vec<&str> = udp.next()?.split_whitespace().collect();
    let i = names.iter().position(|n| *n == "RcvbufErrors")?;
    values.get(i)?.parse().ok()
}

/// Sets a TLS listener's certificate expiry gauge.
pub fn set_certificate_expiry(listener: &str, unix_seconds: i64) {
    gauge!(TLS_CERT_EXPIRY, "listener" => listener.to_string()).set(unix_seconds as f64);
}

/// Counts a TLS reload.
pub fn tls_reloaded(listener: &str, ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    counter!(TLS_RELOADS, "listener" => listener.to_string(), "outcome" => outcome).increment(1);
}

/// Records one committed batch.
pub fn batch_committed(records: usize, bytes: usize, seconds: f64, next_seq: u64) {
    histogram!(BATCH_RECORDS).record(records as f64);
    histogram!(BATCH_BYTES).record(bytes as f64);
    histogram!(COMMIT_SECONDS).record(seconds);
    gauge!(NEXT_SEQ).set(next_seq as f64);
}

/// Counts a failed commit attempt.
pub fn commit_failed() {
    counter!(COMMIT_FAILURES).increment(1);
}
