//! How a stored record is written for each kind of receiver.
//!
//! Syslog output is RFC 5424 and carries `[auditrelay@32473 seq="…" cluster="…"]` so that a
//! SIEM can drop duplicates (delivery is at least once). A message that arrived as RFC 5424 goes
//! out byte for byte as it came, with that element inserted after its own structured data; other
//! messages are written as RFC 5424 from their parsed fields. JSON outputs carry the record of
//! DESIGN.md §4, `seq` included.

use std::borrow::Cow;

use auditrelay_parsers::rfc5424::{escape_param_value, structured_data_span};
use auditrelay_parsers::timestamp::parse_rfc3339_strict;

use super::config::{Destination, Framing, Kind, OutputFormat};
use super::sink::Batch;
use super::stream::frame;
use super::view::RecordView;
use crate::store::query::{rfc3339_micros, with_seq};

/// The SD-ID of the relay's element (32473 is the example enterprise number of RFC 5424).
pub const SD_ID: &str = "auditrelay@32473";

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Turns records into the payloads one destination sends.
#[derive(Debug, Clone)]
pub struct Encoder {
    kind: Kind,
    format: OutputFormat,
    cluster: String,
    index: Option<String>,
    sourcetype: Option<String>,
    /// Stream destinations get their framing here, so a batch goes on the wire as built.
    framing: Option<Framing>,
    /// `" cluster="…"]`, the end of the relay's SD element.
    element_tail: String,
}

impl Encoder {
    pub fn new(dest: &Destination, cluster: &str) -> Encoder {
        Encoder {
            kind: dest.kind,
            format: dest.format,
            cluster: cluster.to_string(),
            index: dest.index.clone(),
            sourcetype: dest.sourcetype.clone(),
            framing: matches!(dest.kind, Kind::SyslogTcp | Kind::SyslogTls).then_some(dest.framing),
            element_tail: format!("\" cluster=\"{}\"]", escape_param_value(cluster)),
        }
    }

    /// Encodes record `seq` into `batch`; `scratch` is reused between records.
    pub fn push(
        &self,
        seq: u64,
        json: &[u8],
        view: &RecordView<'_>,
        batch: &mut Batch,
        scratch: &mut Vec<u8>,
    ) {
        scratch.clear();
        self.encode(seq, json, view, scratch);
        self.append(seq, scratch, batch);
    }

    /// Whether records that arrived as RFC 5424 go out as they came (plus the SD element), so
    /// only their raw bytes are needed.
    pub fn passes_rfc5424_through(&self) -> bool {
        self.format == OutputFormat::Rfc5424
            && matches!(
                self.kind,
                Kind::SyslogTcp | Kind::SyslogTls | Kind::SyslogUdp | Kind::Relp | Kind::File
            )
    }

    /// The fast path: an RFC 5424 message as received, with the element inserted, into
    /// `batch`. False (and nothing written) if `raw` is not well-formed RFC 5424.
    pub fn push_rfc5424_raw(
        &self,
        seq: u64,
        raw: &[u8],
        batch: &mut Batch,
        scratch: &mut Vec<u8>,
    ) -> bool {
        scratch.clear();
        if !insert_element(raw, |out| self.write_sd_element(seq, out), scratch) {
            return false;
        }
        self.append(seq, scratch, batch);
        true
    }

    fn append(&self, seq: u64, payload: &[u8], batch: &mut Batch) {
        match self.framing {
            Some(framing) => frame(framing, payload, &mut batch.data),
            None => batch.data.extend_from_slice(payload),
        }
        batch.close_item(seq);
    }

    /// Appends the payload for record `seq` (stored as `json`, seen as `view`) to `out`.
    pub fn encode(&self, seq: u64, json: &[u8], view: &RecordView<'_>, out: &mut Vec<u8>) {
        match (self.kind, self.format) {
            (Kind::SplunkHec, _) => self.hec_event(seq, json, view, out),
            (Kind::Elasticsearch, _) => self.bulk_create(seq, json, view, out),
            (_, OutputFormat::Json) => with_seq(seq, json, out),
            (_, OutputFormat::Rfc5424) => self.rfc5424(seq, view, out),
            (_, OutputFormat::Rfc3164) => rfc3164(view, out),
        }
    }

    /// `[auditrelay@32473 seq="…" cluster="…"]`, written without allocating: it is added to
    /// every message.
    fn write_sd_element(&self, seq: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(b"[");
        out.extend_from_slice(SD_ID.as_bytes());
        out.extend_from_slice(b" seq=\"");
        write_decimal(seq, out);
        out.extend_from_slice(self.element_tail.as_bytes());
    }

    fn rfc5424(&self, seq: u64, view: &RecordView<'_>, out: &mut Vec<u8>) {
        let element = |out: &mut Vec<u8>| self.write_sd_element(seq, out);
        if view.format.as_deref() == Some("rfc5424") {
            if let Some(raw) = view.raw_bytes() {
                if insert_element(&raw, element, out) {
                    return;
                }
            }
        }
        let pri = view.pri.unwrap_or(13);
        out.extend_from_slice(format!("<{pri}>1 ").as_bytes());
        out.extend_from_slice(event_time(view).as_bytes());
        let source_ip = view.source.as_ref().and_then(|s| s.ip.as_deref());
        for (value, max) in [
            (view.hostname.as_deref().or(source_ip), 255),
            (view.app_name.as_deref(), 48),
            (view.proc_id.as_deref(), 128),
            (view.msg_id.as_deref(), 32),
        ] {
            out.push(b' ');
            header_field(value, max, out);
        }
        out.push(b' ');
        element(out);
        let msg = message_of(view);
        if !msg.is_empty() {
            out.push(b' ');
            out.extend_from_slice(&msg);
        }
    }

    fn hec_event(&self, seq: u64, json: &[u8], view: &RecordView<'_>, out: &mut Vec<u8>) {
        let micros = view
            .timestamp
            .as_deref()
            .and_then(rfc3339_micros)
            .or_else(|| view.received_at.as_deref().and_then(rfc3339_micros))
            .unwrap_or(0);
        let mut head = serde_json::Map::new();
        head.insert(
            "time".into(),
            serde_json::Value::String(format!(
                "{}.{:06}",
                micros.div_euclid(1_000_000),
                micros.rem_euclid(1_000_000)
            )),
        );
        if let Some(host) = view.hostname.as_deref() {
            head.insert("host".into(), host.into());
        }
        head.insert("source".into(), "auditrelay".into());
        head.insert(
            "sourcetype".into(),
            self.sourcetype
                .as_deref()
                .unwrap_or("auditrelay:json")
                .into(),
        );
        if let Some(index) = &self.index {
            head.insert("index".into(), index.as_str().into());
        }
        head.insert(
            "fields".into(),
            serde_json::json!({"auditrelay_seq": seq.to_string(), "auditrelay_cluster": self.cluster}),
        );
        let head = serde_json::Value::Object(head).to_string();
        out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
        out.extend_from_slice(b",\"event\":");
        with_seq(seq, json, out);
        out.push(b'}');
    }

    fn bulk_create(&self, seq: u64, json: &[u8], view: &RecordView<'_>, out: &mut Vec<u8>) {
        let received = view
            .received_at
            .as_deref()
            .unwrap_or("1970-01-01T00:00:00Z");
        let index = expand_index(self.index.as_deref().unwrap_or("auditrelay"), received);
        let action = serde_json::json!({"create": {"_index": index, "_id": format!("{}-{seq}", self.cluster)}});
        out.extend_from_slice(action.to_string().as_bytes());
        out.push(b'\n');
        // `@timestamp` as data streams and Kibana expect; the rest is the record.
        let at = view
            .timestamp
            .as_deref()
            .filter(|t| rfc3339_micros(t).is_some());
        out.extend_from_slice(b"{\"@timestamp\":");
        out.extend_from_slice(
            serde_json::Value::from(at.unwrap_or(received))
                .to_string()
                .as_bytes(),
        );
        out.push(b',');
        let mut doc = Vec::with_capacity(json.len() + 24);
        with_seq(seq, json, &mut doc);
        out.extend_from_slice(&doc[1..]);
    }
}

/// Writes RFC 5424 message `raw` with `element` added after its structured data (replacing a
/// nil `-`), every other byte as it came. False if `raw` is not well-formed RFC 5424.
fn insert_element(raw: &[u8], element: impl FnOnce(&mut Vec<u8>), out: &mut Vec<u8>) -> bool {
    let Some(span) = structured_data_span(raw, SD_ID) else {
        return false;
    };
    // A message that already passed through a relay carries its element: replace it, as an
    // SD-ID may appear only once (RFC 5424 §6.3.2); this hop's seq is the one to dedupe on.
    let (before, after) = match span.element {
        Some(earlier) => earlier,
        None if &raw[span.start..span.end] == b"-" => (span.start, span.end),
        None => (span.end, span.end),
    };
    out.extend_from_slice(&raw[..before]);
    element(out);
    out.extend_from_slice(&raw[after..]);
    true
}

/// Appends `n` in decimal.
pub fn write_decimal(mut n: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// `%Y`, `%m`, `%d` replaced from the receive date (UTC).
fn expand_index(pattern: &str, received: &str) -> String {
    let part = |r: std::ops::Range<usize>| received.get(r).unwrap_or("00");
    pattern
        .replace("%Y", part(0..4))
        .replace("%m", part(5..7))
        .replace("%d", part(8..10))
}

/// The event time if it is RFC 3339, else the receive time.
fn event_time<'v>(view: &'v RecordView<'_>) -> Cow<'v, str> {
    match view.timestamp.as_deref() {
        Some(t) if rfc3339_micros(t).is_some() => Cow::Borrowed(t),
        _ => Cow::Borrowed(view.received_at.as_deref().unwrap_or("-")),
    }
}

/// The MSG to send: the parsed message, or the raw text of a message that did not parse.
fn message_of<'v>(view: &'v RecordView<'_>) -> Cow<'v, [u8]> {
    match view.message.as_deref() {
        Some(m) if view.format.as_deref() != Some("raw") => Cow::Borrowed(m.as_bytes()),
        _ => view.raw_bytes().unwrap_or(Cow::Borrowed(b"")),
    }
}

/// An RFC 5424 header field: printable US-ASCII, at most `max` bytes, `-` when absent.
fn header_field(value: Option<&str>, max: usize, out: &mut Vec<u8>) {
    match value.filter(|v| !v.is_empty()) {
        None => out.push(b'-'),
        Some(v) => {
            out.extend(
                v.bytes()
                    .take(max)
                    .map(|c| if (33..=126).contains(&c) { c } else { b'_' }),
            )
        }
    }
}

/// RFC 3164: messages that arrived so go as they came; others get a BSD header.
fn rfc3164(view: &RecordView<'_>, out: &mut Vec<u8>) {
    if view.format.as_deref() == Some("rfc3164") {
        if let Some(raw) = view.raw_bytes() {
            out.extend_from_slice(&raw);
            return;
        }
    }
    let pri = view.pri.unwrap_or(13);
    out.extend_from_slice(format!("<{pri}>").as_bytes());
    match parse_rfc3339_strict(event_time(view).as_bytes()) {
        Some((t, _)) => out.extend_from_slice(
            format!(
                "{} {:>2} {:02}:{:02}:{:02}",
                MONTHS[usize::from(t.month.clamp(1, 12)) - 1],
                t.day,
                t.hour,
                t.minute,
                t.second
            )
            .as_bytes(),
        ),
        None => out.extend_from_slice(b"Jan  1 00:00:00"),
    }
    out.push(b' ');
    let source_ip = view.source.as_ref().and_then(|s| s.ip.as_deref());
    header_field(view.hostname.as_deref().or(source_ip), 255, out);
    out.push(b' ');
    if let Some(app) = view.app_name.as_deref() {
        header_field(Some(app), 32, out);
        if let Some(pid) = view.proc_id.as_deref() {
            out.push(b'[');
            header_field(Some(pid), 128, out);
            out.push(b']');
        }
        out.extend_from_slice(b": ");
    }
    out.extend_from_slice(&message_of(view));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::config::{Destination, ForwardSection};

    fn encoder(url: &str) -> Encoder {
        Encoder::new(
            &Destination::from_section(ForwardSection::from_url(url)).unwrap(),
            "c1",
        )
    }

    fn encode(url: &str, json: &str) -> String {
        let view = RecordView::parse(json.as_bytes()).unwrap();
        let mut out = Vec::new();
        encoder(url).encode(7, json.as_bytes(), &view, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rfc5424_input_goes_out_byte_exact_with_the_element_added() {
        let j = r#"{"format":"rfc5424","raw":"<13>1 - h a - - - hello  world\n"}"#;
        assert_eq!(
            encode("syslog+tcp://x:1", j),
            "<13>1 - h a - - [auditrelay@32473 seq=\"7\" cluster=\"c1\"] hello  world\n"
        );
        let j = r#"{"format":"rfc5424","raw":"<13>1 - h a - - [x@1 k=\"v\"]"}"#;
        assert_eq!(
            encode("syslog+tcp://x:1", j),
            "<13>1 - h a - - [x@1 k=\"v\"][auditrelay@32473 seq=\"7\" cluster=\"c1\"]"
        );
    }

    #[test]
    fn an_element_from_an_earlier_relay_is_replaced_not_repeated() {
        let raw = r#"<13>1 - h a - - [x@1 k="\]\""][auditrelay@32473 seq="5" cluster="up"][y@1] m"#;
        let j = serde_json::json!({"format": "rfc5424", "raw": raw}).to_string();
        assert_eq!(
            encode("syslog+tcp://x:1", &j),
            r#"<13>1 - h a - - [x@1 k="\]\""][auditrelay@32473 seq="7" cluster="c1"][y@1] m"#
        );
    }

    #[test]
    fn legacy_and_raw_records_are_written_as_rfc5424() {
        let j = r#"{"received_at":"2026-11-26T10:00:00.000001Z","source":{"ip":"10.0.0.1"},"format":"rfc3164","pri":38,"timestamp":"2026-11-26T09:59:59Z","hostname":"fw 1","app_name":"sshd","proc_id":"42","message":"Accepted","raw":"<38>Nov 26 09:59:59 fw1 sshd[42]: Accepted"}"#;
        assert_eq!(
            encode("syslog+tcp://x:1", j),
            "<38>1 2026-11-26T09:59:59Z fw_1 sshd 42 - [auditrelay@32473 seq=\"7\" cluster=\"c1\"] Accepted"
        );
        assert_eq!(
            encode("syslog+tcp://x:1?format=rfc3164", j),
            "<38>Nov 26 09:59:59 fw1 sshd[42]: Accepted"
        );
        let j = r#"{"received_at":"2026-11-26T10:00:00.000001Z","source":{"ip":"10.0.0.1"},"format":"raw","parse_error":"x","raw":"junk here"}"#;
        assert_eq!(
            encode("syslog+udp://x:1", j),
            "<13>1 2026-11-26T10:00:00.000001Z 10.0.0.1 - - - [auditrelay@32473 seq=\"7\" cluster=\"c1\"] junk here"
        );
    }

    #[test]
    fn json_outputs_carry_seq() {
        let j = r#"{"received_at":"2026-11-26T10:00:00.000001Z","format":"raw","raw":"x"}"#;
        assert_eq!(
            encode("http://x:1/in", j),
            r#"{"seq":7,"received_at":"2026-11-26T10:00:00.000001Z","format":"raw","raw":"x"}"#
        );
        let bulk = encode("elasticsearch://x/logs-%Y.%m.%d", j);
        let (action, doc) = bulk.split_once('\n').unwrap();
        let action: serde_json::Value = serde_json::from_str(action).unwrap();
        assert_eq!(action["create"]["_index"], "logs-2026.11.26");
        assert_eq!(action["create"]["_id"], "c1-7");
        let doc: serde_json::Value = serde_json::from_str(doc).unwrap();
        assert_eq!(doc["seq"], 7);
        assert_eq!(doc["@timestamp"], "2026-11-26T10:00:00.000001Z");
        let hec: serde_json::Value =
            serde_json::from_str(&encode("splunk-hec://x?token=t", j)).unwrap();
        assert_eq!(hec["event"]["seq"], 7);
        assert_eq!(hec["time"], "1795687200.000001");
        assert_eq!(hec["fields"]["auditrelay_seq"], "7");
    }
}
