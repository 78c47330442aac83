//! The audit record: one JSON object per message, exactly as DESIGN.md §4 defines it.
//! Absent fields are left out, never `null`.

use std::borrow::Cow;

use base64::Engine;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::payload::Fields;
use crate::pri::Pri;
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source<'a> {
    pub ip: Cow<'a, str>,
    pub port: u16,
    /// `udp`, `tcp`, `tls` or `relp`.
    pub transport: &'static str,
    /// The configured listener's name.
    pub listener: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_peer: Option<Cow<'a, str>>,
}

/// The event time: RFC 5424 text is already RFC 3339 and is kept as written; legacy times are
/// completed (year, zone) and printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventTime<'a> {
    Verbatim(&'a str),
    Resolved(DateTime),
}

/// One parsed message. Borrowed from the input bytes; serialise it with serde.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub seq: Option<u64>,
    pub received_at: Option<DateTime>,
    pub source: Option<Source<'a>>,
    pub format: Format,
    pub dialect: Option<&'static str>,
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
    pub fields: Fields<'a>,
    pub parse_error: Option<String>,
    /// The original bytes as received (the frame, without MSG-LEN or trailer).
    pub raw: &'a [u8],
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
            fields: Vec::new(),
            parse_error: Some(error),
            raw,
        }
    }

    /// Adds a reason to `parse_error`, after any reason already there.
    pub fn add_parse_error(&mut self, reason: &str) {
        match &mut self.parse_error {
            Some(e) => {
                e.push_str("; ");
                e.push_str(reason);
            }
            None => self.parse_error = Some(reason.to_string()),
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
        // Serialising plain strings and numbers into a Vec cannot fail.
        let _ = serde_json::to_writer(out, self);
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

/// A time serialised as its RFC 3339 text without an intermediate string.
struct Rfc3339<'r>(&'r DateTime);

impl Serialize for Rfc3339<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

struct SdJson<'r, 'a>(&'r [SdElement<'a>]);

impl Serialize for SdJson<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for element in self.0 {
            seq.serialize_element(&SdElementJson(element))?;
        }
        seq.end()
    }
}

struct SdElementJson<'r, 'a>(&'r SdElement<'a>);

impl Serialize for SdElementJson<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("id", self.0.id)?;
        let params: Vec<(&str, Cow<'_, str>)> =
            self.0.params.iter().map(|p| (p.name, p.value())).collect();
        map.serialize_entry("params", &params)?;
        map.end()
    }
}

/// `fields` as a JSON object; when a key repeats, the first value wins (`raw` keeps the rest).
struct FieldsJson<'r, 'a>(&'r Fields<'a>);

impl Serialize for FieldsJson<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if !self.0[..i].iter().any(|(prev, _)| prev == k) {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

impl Serialize for Record<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(seq) = self.seq {
            map.serialize_entry("seq", &seq)?;
        }
        if let Some(at) = &self.received_at {
            map.serialize_entry("received_at", &Rfc3339(at))?;
        }
        if let Some(source) = &self.source {
            map.serialize_entry("source", source)?;
        }
        map.serialize_entry("format", self.format.name())?;
        if let Some(dialect) = self.dialect {
            map.serialize_entry("dialect", dialect)?;
        }
        if let Some(pri) = self.pri {
            map.serialize_entry("pri", &pri.value())?;
            map.serialize_entry("facility", &pri.facility())?;
            map.serialize_entry("severity", &pri.severity())?;
            map.serialize_entry("facility_name", pri.facility_name())?;
            map.serialize_entry("severity_name", pri.severity_name())?;
            if self.pri_inferred {
                map.serialize_entry("pri_inferred", &true)?;
            }
        }
        if let Some(version) = self.version {
            map.serialize_entry("version", &version)?;
        }
        match &self.timestamp {
            Some(EventTime::Verbatim(text)) => map.serialize_entry("timestamp", text)?,
            Some(EventTime::Resolved(dt)) => map.serialize_entry("timestamp", &Rfc3339(dt))?,
            None => {}
        }
        if self.timestamp_inferred {
            map.serialize_entry("timestamp_inferred", &true)?;
        }
        if let Some(raw) = &self.timestamp_raw {
            map.serialize_entry("timestamp_raw", raw)?;
        }
        for (key, value) in [
            ("hostname", &self.hostname),
            ("app_name", &self.app_name),
            ("proc_id", &self.proc_id),
            ("msg_id", &self.msg_id),
        ] {
            if let Some(v) = value {
                map.serialize_entry(key, v)?;
            }
        }
        if !self.structured_data.is_empty() {
            map.serialize_entry("structured_data", &SdJson(&self.structured_data))?;
        }
        if let Some(message) = &self.message {
            map.serialize_entry("message", message)?;
        }
        if !self.fields.is_empty() {
            map.serialize_entry("fields", &FieldsJson(&self.fields))?;
        }
        if let Some(e) = &self.parse_error {
            map.serialize_entry("parse_error", e)?;
        }
        match std::str::from_utf8(self.raw) {
            Ok(text) => map.serialize_entry("raw", text)?,
            Err(_) => map.serialize_entry(
                "raw_b64",
                &base64::engine::general_purpose::STANDARD.encode(self.raw),
            )?,
        }
        map.end()
    }
}
