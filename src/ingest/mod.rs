//! Listeners: UDP (RFC 5426), TCP (RFC 6587), TLS (RFC 5425) and RELP. They receive bytes,
//! frame and parse them, and hand prepared records to the write path. They know nothing of
//! storage: the pipeline channel is all they see.
//!
//! Backpressure: stream listeners (TCP, TLS, RELP) wait for room in the pipeline, which stops
//! them reading, which fills the sender's TCP window. UDP cannot wait: it counts what it drops.

pub mod relp;
pub mod stream;
pub mod tls;
pub mod udp;
pub mod url;

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use auditrelay_parsers::timestamp::DateTime;
use auditrelay_parsers::{parse, ParseOptions, Record, Source};
use tokio::sync::oneshot;

use crate::config::ListenerConfig;
use crate::metrics::ListenerMetrics;
use crate::shutdown::Shutdown;
use crate::source_match::SourceMatch;
use crate::store::keys::IndexTerms;
use crate::write_path::{Pipeline, PreparedRecord, ProposedRecord};

/// What every listener task needs.
pub struct Ingest {
    pub config: ListenerConfig,
    pub metrics: Arc<ListenerMetrics>,
    pub pipeline: Pipeline,
    pub parse: ParseOptions,
    /// Per-source offsets for legacy timestamps, most specific first.
    pub zones: Arc<Vec<(SourceMatch, i16)>>,
    pub shutdown: Shutdown,
}

/// The sending side of one connection or datagram, as records show it.
pub struct Peer {
    pub ip: String,
    pub port: u16,
    pub tls_peer: Option<String>,
}

impl Peer {
    pub fn of(addr: std::net::SocketAddr) -> Peer {
        Peer {
            ip: addr.ip().to_canonical().to_string(),
            port: addr.port(),
            tls_peer: None,
        }
    }
}

/// When bytes were received: one clock reading for every message of one read (a read of a
/// stream brings hundreds under load; reading the clock and converting it for each was 1.5%
/// of the relay's CPU).
pub struct Received {
    pub micros: i64,
    pub time: DateTime,
}

impl Received {
    pub fn now() -> Received {
        let micros = now_micros();
        Received {
            micros,
            time: DateTime::from_unix_micros(micros),
        }
    }
}

/// The receive time, in microseconds since the epoch.
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

impl Ingest {
    /// The parse options for a message from `peer`: its zone when one is configured.
    fn options_for(&self, peer: &Peer) -> ParseOptions {
        let mut options = self.parse;
        if !self.zones.is_empty() {
            let ip = peer.ip.parse().ok();
            let listener = Some(self.config.name.as_str());
            if let Some((_, minutes)) = self.zones.iter().find(|(m, _)| m.matches(listener, ip)) {
                options.default_offset_minutes = *minutes;
            }
        }
        options
    }

    /// Parses one message and prepares it for the write path. `defect` says why the frame is
    /// not whole (truncated, incomplete), and goes into `parse_error`.
    pub fn prepare(
        &self,
        bytes: &[u8],
        defect: Option<&str>,
        peer: &Peer,
        received: &Received,
        ack: Option<oneshot::Sender<u64>>,
    ) -> PreparedRecord {
        let received_micros = received.micros;
        let options = self.options_for(peer);
        let source = Source {
            ip: Cow::Borrowed(&peer.ip),
            port: peer.port,
            transport: self.config.url.transport.record_name(),
            listener: Cow::Borrowed(&self.config.name),
            tls_peer: peer.tls_peer.as_deref().map(Cow::Borrowed),
        };
        let mut record = parse(bytes, &received.time, &options);
        record.source = Some(&source);
        if let Some(defect) = defect {
            record.add_parse_error(defect);
            if defect.contains("truncated") {
                self.metrics.truncated.increment(1);
            }
        }
        self.metrics.received.increment(1);
        self.metrics.received_bytes.increment(bytes.len() as u64);
        self.metrics
            .parsed(record.format, record.dialect)
            .increment(1);
        let terms = IndexTerms::of(&record, Some(&peer.ip));
        PreparedRecord {
            record: ProposedRecord {
                received_micros,
                json: json_of(&record),
                terms,
            },
            listener: self.metrics.clone(),
            ack,
            charge: None,
        }
    }
}

thread_local! {
    /// Where a record's JSON is written before it is copied out at its exact size.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(64 << 10));
}

/// The record's JSON in a buffer of exactly its size. Written in place, a record's buffer was
/// either grown while writing (a realloc and a copy, a quarter of the cost of the JSON under
/// load) or sized for the worst case and held that way through the pipeline.
fn json_of(record: &Record<'_>) -> Vec<u8> {
    SCRATCH.with_borrow_mut(|buf| {
        record.write_json(buf);
        let json = buf.as_slice().to_vec();
        // Left empty for the next record; one huge record does not keep its buffer for the
        // thread's life.
        buf.clear();
        buf.shrink_to(64 << 10);
        json
    })
}

/// Keeps the open-connections gauge right however a connection ends.
pub struct ConnectionGuard {
    metrics: Arc<ListenerMetrics>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl ConnectionGuard {
    pub fn new(
        metrics: Arc<ListenerMetrics>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> ConnectionGuard {
        metrics.connections_open.increment(1.0);
        ConnectionGuard {
            metrics,
            _permit: permit,
        }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.metrics.connections_open.decrement(1.0);
    }
}
