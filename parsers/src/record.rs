//! The audit record: one JSON object per message, exactly as DESIGN.md §4 defines it.
//! Absent fields are left out, never `null`.

use std::borrow::Cow;

use base64::Engine;

use crate::json::{key, write_array, write_str, write_str_content, Object};
use crate::payload::{offset_within, Fields};
use crate::pri::Pri;
use crate::rfc3164::{Dialect, HeaderFields};
use crate::rfc5424::SdElement;
use crate::timestamp::DateTime;

/// What the message was parsed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Rfc5424,
    Rfc3164,
    /// Kept verbatim: it could not be parsed (see `parse_error`).
    Raw,
}

impl Format {
    /// The record's `format` value.
    pub fn name(self) -> &'static str {
        match self {
            Format::Rfc5424 => "rfc5424",
            Format::Rfc3164 => "rfc3164",
            Format::Raw => "raw",
        }
    }
}

/// Where a message came from; filled in by the listener that received it, borrowing from the
/// connection's own strings so that each record costs no allocation for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source<'a> {
    pub ip: Cow<'a, str>,
    pub port: u16,
    /// `udp`, `tcp`, `tls` or `relp`.
    pub transport: &'static str,
    /// The configured listener's name.
    pub listener: Cow<'a, str>,
    pub tls_peer: Option<Cow<'a, str>>,
}

/// The event time: RFC 5424 text is already RFC 3339 and is kept as written; legacy times are
/// completed (year, zone) and printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventTime<'a> {
    Verbatim(&'a str),
    Resolved(DateTime),
}

/// One parsed message, borrowed from the input bytes; [`Record::to_json`] writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub seq: Option<u64>,
    pub received_at: Option<DateTime>,
    /// A reference, not a copy: a listener's records share their connection's source, and
    /// carrying it by value made every record 88 bytes larger, which cost a short message's
    /// parse about 6% of its time in moving the record (bench/README.md).
    pub source: Option<&'a Source<'a>>,
    pub format: Format,
    /// Kept as the enum, written by its name: a string here was 15 bytes more in every record,
    /// and the relay's metrics looked its name up among all dialects' for each message.
    pub dialect: Option<Dialect>,
    pub pri: Option<Pri>,
    /// The message had no PRI; `pri` is RFC 3164's default (13, user.notice).
    pub pri_inferred: bool,
    pub version: Option<u16>,
    pub timestamp: Option<EventTime<'a>>,
    pub timestamp_raw: Option<Cow<'a, str>>,
    pub timestamp_inferred: bool,
    pub hostname: Option<Cow<'a, str>>,
    pub app_name: Option<Cow<'a, str>>,
    pub proc_id: Option<Cow<'a, str>>,
    pub msg_id: Option<Cow<'a, str>>,
    pub structured_data: Vec<SdElement<'a>>,
    pub message: Option<Cow<'a, str>>,
    /// Fields a legacy header carries in fixed places, written first in the JSON's `fields`.
    /// The mnemonic's parts and MikroTik's topics are read from `app_name` when the record is
    /// written, so a caller that changes `app_name` changes them too.
    pub header_fields: HeaderFields<'a>,
    /// Pairs read from the content; with `header_fields`, the JSON's `fields` object (when
    /// a key repeats, the first value wins).
    pub fields: Fields<'a>,
    /// Boxed: few records have one, and every record is moved whole, so the pointer's 8 bytes
    /// beat a `String`'s 24 (a smaller record is a faster parse, bench/README.md).
    pub parse_error: Option<Box<String>>,
    /// The original bytes as received (the frame, without MSG-LEN or trailer).
    pub raw: &'a [u8],
    /// `raw` as text, when the parser already found it valid UTF-8: writing the record then
    /// need not check it again (profiled: the second check was 2% of the relay's time). Used
    /// only while it is exactly `raw` (same address and length), so a caller that replaces
    /// `raw` without clearing it changes nothing.
    pub raw_text: Option<&'a str>,
}

impl<'a> Record<'a> {
    /// A record that only keeps the bytes: `format: "raw"` with the reason.
    pub fn raw(raw: &'a [u8], error: String) -> Record<'a> {
        Record {
            seq: None,
            received_at: None,
            source: None,
            format: Format::Raw,
            dialect: None,
            pri: None,
            pri_inferred: false,
            version: None,
            timestamp: None,
            timestamp_raw: None,
            timestamp_inferred: false,
            hostname: None,
            app_name: None,
            proc_id: None,
            msg_id: None,
            structured_data: Vec::new(),
            message: None,
            header_fields: HeaderFields::default(),
            fields: Vec::new(),
            parse_error: Some(Box::new(error)),
            raw,
            raw_text: None,
        }
    }

    /// Adds a reason to `parse_error`, after any reason already there.
    pub fn add_parse_error(&mut self, reason: &str) {
        match &mut self.parse_error {
            Some(e) => {
                e.push_str("; ");
                e.push_str(reason);
            }
            None => self.parse_error = Some(Box::new(reason.to_string())),
        }
    }

    /// The record as one line of JSON (no trailing newline).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.raw.len() * 2 + 256);
        self.write_json(&mut out);
        out
    }

    /// Appends the record's JSON to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::begin(out);
        if let Some(seq) = self.seq {
            o.u64(key!("seq"), seq);
        }
        if let Some(at) = &self.received_at {
            write_time(o.key(key!("received_at")), at);
        }
        if let Some(source) = self.source {
            write_source(o.key(key!("source")), source);
        }
        o.str(key!("format"), self.format.name());
        if let Some(dialect) = self.dialect {
            o.str(key!("dialect"), dialect.name());
        }
        if let Some(pri) = self.pri {
            o.u64(key!("pri"), u64::from(pri.value()));
            o.u64(key!("facility"), u64::from(pri.facility()));
            o.u64(key!("severity"), u64::from(pri.severity()));
            o.str(key!("facility_name"), pri.facility_name());
            o.str(key!("severity_name"), pri.severity_name());
            if self.pri_inferred {
                o.bool(key!("pri_inferred"), true);
            }
        }
        if let Some(version) = self.version {
            o.u64(key!("version"), u64::from(version));
        }
        match &self.timestamp {
            Some(EventTime::Verbatim(text)) => o.str(key!("timestamp"), text),
            Some(EventTime::Resolved(dt)) => write_time(o.key(key!("timestamp")), dt),
            None => {}
        }
        if self.timestamp_inferred {
            o.bool(key!("timestamp_inferred"), true);
        }
        if let Some(raw) = &self.timestamp_raw {
            o.str(key!("timestamp_raw"), raw);
        }
        for (key, value) in [
            (key!("hostname"), &self.hostname),
            (key!("app_name"), &self.app_name),
            (key!("proc_id"), &self.proc_id),
            (key!("msg_id"), &self.msg_id),
        ] {
            if let Some(v) = value {
                o.str(key, v);
            }
        }
        if !self.structured_data.is_empty() {
            write_structured_data(o.key(key!("structured_data")), &self.structured_data);
        }
        // Where the message's escaped text went, for `raw` to copy (see below).
        let mut message_written = None;
        if let Some(message) = &self.message {
            let out = o.key(key!("message"));
            let start = out.len() + 1;
            write_str(out, message);
            message_written = Some((start..out.len() - 1, message.as_ref()));
        }
        if !self.fields.is_empty() || !self.header_fields.is_empty() {
            let header = (&self.header_fields, self.app_name.as_deref());
            write_fields(o.key(key!("fields")), header, &self.fields);
        }
        if let Some(e) = &self.parse_error {
            o.str(key!("parse_error"), e);
        }
        let known = self
            .raw_text
            .filter(|t| t.as_ptr() == self.raw.as_ptr() && t.len() == self.raw.len());
        match known.map_or_else(|| std::str::from_utf8(self.raw), Ok) {
            Ok(text) => {
                let out = o.key(key!("raw"));
                // The message is nearly always a piece of `raw`. When it needed escapes (the
                // quotes of FortiGate's pairs, say), its escaped text is copied from where it
                // was just written rather than escaped a second time; clean text is scanned
                // faster than the copy's extra steps.
                let inside = message_written
                    .filter(|(escaped, m)| escaped.len() > m.len())
                    .and_then(|(escaped, m)| {
                        offset_within(text.as_bytes(), m.as_bytes())
                            .map(|at| (escaped, at, m.len()))
                    });
                match inside {
                    Some((escaped, at, len)) => {
                        out.push(b'"');
                        write_str_content(out, &text[..at]);
                        out.extend_from_within(escaped);
                        write_str_content(out, &text[at + len..]);
                        out.push(b'"');
                    }
                    None => write_str(out, text),
                }
            }
            Err(_) => o.str(
                key!("raw_b64"),
                &base64::engine::general_purpose::STANDARD.encode(self.raw),
            ),
        }
        o.end();
    }
}

/// Strips the trailers that RFC 5424 and common senders leave at the end of MSG: LF, CR LF, NUL.
pub fn trim_trailer(mut msg: &[u8]) -> &[u8] {
    loop {
        match msg {
            [rest @ .., b'\r', b'\n'] | [rest @ .., b'\n'] | [rest @ .., b'\0'] => msg = rest,
            _ => return msg,
        }
    }
}

/// `"time"` in RFC 3339, written straight into the buffer.
fn write_time(out: &mut Vec<u8>, time: &DateTime) {
    out.push(b'"');
    time.write_rfc3339_bytes(out);
    out.push(b'"');
}

fn write_source(out: &mut Vec<u8>, source: &Source<'_>) {
    let mut o = Object::begin(out);
    o.str(key!("ip"), &source.ip);
    o.u64(key!("port"), u64::from(source.port));
    o.str(key!("transport"), source.transport);
    o.str(key!("listener"), &source.listener);
    if let Some(peer) = &source.tls_peer {
        o.str(key!("tls_peer"), peer);
    }
    o.end();
}

/// `[{"id":…,"params":[[name,value],…]},…]`: params stay a list, in order, repeats kept.
fn write_structured_data(out: &mut Vec<u8>, elements: &[SdElement<'_>]) {
    write_array(out, elements, |out, element| {
        let mut o = Object::begin(out);
        o.str(key!("id"), element.id);
        write_array(o.key(key!("params")), &element.params, |out, param| {
            out.push(b'[');
            write_str(out, param.name);
            out.push(b',');
            write_str(out, &param.value());
            out.push(b']');
        });
        o.end();
    });
}

/// `fields` as a JSON object: the header's fields (with the TAG they are read from), then
/// `fields`. When a key repeats, the first value wins (`raw` keeps the rest).
fn write_fields(
    out: &mut Vec<u8>,
    (header, tag): (&HeaderFields<'_>, Option<&str>),
    fields: &Fields<'_>,
) {
    let mut o = Object::begin(out);
    // Keys already written, as bits of a small filter: only a key whose bit is set is looked
    // for among the earlier ones. Comparing every key with all before it was a twelfth of
    // writing a FortiGate record (callgrind).
    let mut seen = 0u64;
    header.for_each(tag, |k, v| {
        o.str_any_key(k, v);
        seen |= 1u64 << (key_hash(k) % 64);
    });
    for (i, (k, v)) in fields.iter().enumerate() {
        let bit = 1u64 << (key_hash(k) % 64);
        if seen & bit == 0
            || !(fields[..i].iter().any(|(prev, _)| prev == k)
                || (!header.is_empty() && header.has(tag, k)))
        {
            o.str_any_key(k, v);
        }
        seen |= bit;
    }
    o.end();
}

/// A cheap hash of a key for [`write_fields`]' filter: its length and its first and last bytes.
fn key_hash(key: &str) -> u32 {
    let b = key.as_bytes();
    let ends = b.first().map_or(0, |&c| u32::from(c)) + b.last().map_or(0, |&c| u32::from(c) * 7);
    ends + b.len() as u32 * 31
}
