//! # auditrelay-parsers
//!
//! Turns syslog bytes into audit records, with no I/O: RFC 5424 (strict), RFC 3164 as devices
//! really send it (named dialects), RFC 6587 framing, and CEF/LEEF/key=value payloads. Nothing is
//! ever dropped for failing to parse: such a message becomes a `raw` record with `parse_error`
//! and its original bytes.
//!
//! ```
//! use auditrelay_parsers::{parse, ParseOptions, timestamp::DateTime};
//!
//! let received = DateTime::from_unix_micros(1_700_000_000_000_000);
//! let record = parse(b"<34>1 2003-10-11T22:14:15.003Z host su - ID47 - 'su root' failed",
//!                    &received, &ParseOptions::default());
//! assert_eq!(record.format.name(), "rfc5424");
//! assert_eq!(record.hostname.as_deref(), Some("host"));
//! let json = String::from_utf8(record.to_json()).unwrap();
//! assert!(json.contains(r#""message":"'su root' failed""#));
//! ```
#![forbid(unsafe_code)]

pub mod framing;
mod json;
#[cfg(test)]
mod oracle;
pub mod payload;
pub mod pri;
pub mod record;
pub mod rfc3164;
pub mod rfc5424;
mod swar;
pub mod timestamp;

use std::borrow::Cow;

use payload::{parse_cef, parse_leef, Checked};
use pri::DEFAULT_PRI;
use record::trim_trailer;
pub use record::{EventTime, Format, Record, Source};
use rfc3164::{Dialect, Rfc3164Options};
use rfc5424::{parse_rfc5424_checked, Rfc5424Options, Start};
use timestamp::{resolve, DateTime};

/// Which syslog format to expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FormatChoice {
    /// RFC 5424 when the message starts with `<PRI>VERSION SP`, RFC 3164 otherwise. Repeated
    /// SD-IDs are kept (and reported in `parse_error`) rather than rejected.
    #[default]
    Auto,
    /// RFC 5424 to the letter: anything invalid becomes `raw`.
    Rfc5424,
    /// RFC 3164 (and its dialects) only.
    Rfc3164,
}

/// How to parse: the format to expect, the zone for timestamps that carry none, payload parsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseOptions {
    pub format: FormatChoice,
    /// UTC offset in minutes assumed for legacy timestamps without a zone (per source).
    pub default_offset_minutes: i16,
    /// Read `key=value` pairs from legacy messages that no dialect claimed.
    pub key_values: bool,
}

/// Parses one message (one frame) received at `received` into a record. Never fails: what does
/// not parse is returned as `format: "raw"` with the reason.
pub fn parse<'a>(raw: &'a [u8], received: &DateTime, options: &ParseOptions) -> Record<'a> {
    // Senders often end a frame with LF or NUL. RFC 5424 has no trailer, so it is not MSG, and
    // legacy messages are read without it too; `raw` keeps it.
    let input = trim_trailer(raw);
    let frame = Frame { raw, input };
    match options.format {
        FormatChoice::Rfc5424 => from_rfc5424(frame, received, Rfc5424Options::default(), None),
        FormatChoice::Rfc3164 => from_rfc3164(frame, received, options, pri::parse_pri(input)),
        FormatChoice::Auto => match rfc5424::start(input) {
            Start::Rfc5424(head) => from_rfc5424(
                frame,
                received,
                Rfc5424Options {
                    allow_duplicate_sd_ids: true,
                },
                Some(head),
            ),
            Start::Legacy(pri) => from_rfc3164(frame, received, options, pri),
        },
    }
}

/// One frame as received (`raw`) and without its trailer (`input`), trimmed once.
#[derive(Clone, Copy)]
struct Frame<'a> {
    raw: &'a [u8],
    input: &'a [u8],
}

/// A raw record that keeps what could be read of the PRI.
fn raw_record<'a>(
    raw: &'a [u8],
    received: &DateTime,
    error: String,
    pri: Option<pri::Pri>,
) -> Record<'a> {
    let mut record = Record::raw(raw, error);
    record.received_at = Some(*received);
    record.pri = pri;
    record
}

// The records below are built as one struct literal in return position: profiling showed
// that building a default record and filling it in spent a tenth of the parse time moving it.

/// `head` is [`rfc5424::start`]'s head of the trimmed frame, when auto mode has read it already.
fn from_rfc5424<'a>(
    Frame { raw, input }: Frame<'a>,
    received: &DateTime,
    options: Rfc5424Options,
    head: Option<rfc5424::Head<'a>>,
) -> Record<'a> {
    // One UTF-8 check of the whole frame serves the header, MSG and `raw` in the JSON.
    let checked = Checked::new(raw);
    // Read in place through a reference: moved out of the `Result`, the message was copied
    // with a call to `memcpy` for every message (callgrind).
    let mut parsed = parse_rfc5424_checked(input, checked, options, head);
    let m = match &mut parsed {
        Ok(m) => m,
        Err(e) => {
            let pri = pri::parse_pri(input).ok().map(|(_, p)| p);
            return raw_record(raw, received, e.to_string(), pri);
        }
    };
    let msg = m
        .msg
        .filter(|msg| !msg.bytes.is_empty())
        .map(|msg| msg.bytes);
    let (dialect, fields) = match msg.and_then(payload_fields) {
        Some((dialect, fields)) => (Some(dialect), fields),
        None => (None, Vec::new()),
    };
    Record {
        seq: None,
        received_at: Some(*received),
        source: None,
        format: Format::Rfc5424,
        dialect,
        pri: Some(m.pri),
        pri_inferred: false,
        version: Some(m.version),
        timestamp: m.timestamp.map(|(_, text)| EventTime::Verbatim(text)),
        timestamp_raw: m.timestamp.map(|(_, text)| Cow::Borrowed(text)),
        timestamp_inferred: false,
        hostname: m.hostname.map(Cow::Borrowed),
        app_name: m.app_name.map(Cow::Borrowed),
        proc_id: m.proc_id.map(Cow::Borrowed),
        msg_id: m.msg_id.map(Cow::Borrowed),
        message: msg.map(|m| checked.text(m)),
        header_fields: Default::default(),
        fields,
        parse_error: m.has_duplicate_sd_id.then(|| {
            Box::new("repeated SD-ID kept (RFC 5424 section 6.3.2 forbids it)".to_string())
        }),
        structured_data: std::mem::take(&mut m.structured_data),
        raw,
        raw_text: checked.whole(),
    }
}

/// CEF and LEEF inside an RFC 5424 MSG.
fn payload_fields(msg: &[u8]) -> Option<(Dialect, payload::Fields<'_>)> {
    // One byte turns away nearly every message before either parser looks at it.
    if !matches!(msg.first(), Some(b'C' | b'L')) {
        return None;
    }
    parse_cef(msg)
        .map(|f| (Dialect::Cef, f))
        .or_else(|| parse_leef(msg).map(|f| (Dialect::Leef, f)))
}

/// `pri` is [`pri::parse_pri`] of the trimmed frame, read once by the caller.
fn from_rfc3164<'a>(
    Frame { raw, input }: Frame<'a>,
    received: &DateTime,
    options: &ParseOptions,
    pri: pri::PriRead<'a>,
) -> Record<'a> {
    let legacy = Rfc3164Options {
        key_values: options.key_values,
    };
    // Checked over the whole frame (the trailer is ASCII): pieces of `input` borrow from it, and
    // the JSON's `raw` needs no second check.
    let checked = Checked::new(raw);
    let mut m = rfc3164::Rfc3164Message::default();
    if let Err(e) = rfc3164::parse_checked(&mut m, checked, input, pri, legacy) {
        return raw_record(raw, received, e.to_string(), None);
    }
    let resolved = m
        .timestamp
        .map(|ts| resolve(&ts.time, received, options.default_offset_minutes));
    Record {
        seq: None,
        received_at: Some(*received),
        source: None,
        format: Format::Rfc3164,
        dialect: m.dialect,
        pri: Some(m.pri.unwrap_or(DEFAULT_PRI)),
        pri_inferred: m.pri.is_none(),
        version: None,
        timestamp: resolved.map(|(dt, _)| EventTime::Resolved(dt)),
        timestamp_raw: m.timestamp.map(|ts| checked.text(ts.raw)),
        timestamp_inferred: resolved.is_some_and(|(_, inferred)| inferred),
        hostname: m.hostname.map(|t| checked.text(t)),
        app_name: m.app_name.map(|t| checked.text(t)),
        proc_id: m.proc_id.map(|t| checked.text(t)),
        msg_id: None,
        structured_data: Vec::new(),
        message: (!m.msg.is_empty()).then(|| checked.text(m.msg)),
        header_fields: m.header,
        fields: m.fields,
        parse_error: None,
        raw,
        raw_text: checked.whole(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received() -> DateTime {
        DateTime::from_unix_micros(1_767_225_600_000_000) // 2026-01-01T00:00:00Z
    }

    fn json(input: &[u8], options: &ParseOptions) -> serde_json::Value {
        serde_json::from_slice(&parse(input, &received(), options).to_json()).unwrap()
    }

    #[test]
    fn rfc5424_record_matches_the_schema() {
        let v = json(
            b"<165>1 2003-10-11T22:14:15.003Z host app 12 ID47 [ex@32473 iut=\"3\"][ex@32473 iut=\"4\"] \xEF\xBB\xBFhello\r\n",
            &ParseOptions::default(),
        );
        assert_eq!(v["format"], "rfc5424");
        assert_eq!(v["facility_name"], "local4");
        assert_eq!(v["severity_name"], "notice");
        assert_eq!(v["timestamp"], "2003-10-11T22:14:15.003Z");
        assert_eq!(v["message"], "hello");
        assert_eq!(v["structured_data"][1]["params"][0][1], "4");
        assert!(v["parse_error"]
            .as_str()
            .unwrap()
            .contains("repeated SD-ID"));
        assert_eq!(v["received_at"], "2026-01-01T00:00:00.000000Z");
        assert!(v.get("seq").is_none());
    }

    #[test]
    fn raw_is_written_from_the_bytes_it_holds_even_when_replaced() {
        let options = ParseOptions::default();
        for input in [
            &b"<34>1 2003-10-11T22:14:15.003Z host su - ID47 - caf\xC3\xA9\n"[..],
            &b"<38>Nov 26 08:00:02 web-01 sshd[4321]: caf\xC3\xA9\r\n"[..],
        ] {
            let mut record = parse(input, &received(), &options);
            assert_eq!(record.raw_text.map(str::as_bytes), Some(input));
            let v: serde_json::Value = serde_json::from_slice(&record.to_json()).unwrap();
            assert_eq!(v["raw"].as_str().map(str::as_bytes), Some(input));
            // A caller that swaps `raw` gets the new bytes, checked again (here: not UTF-8).
            record.raw = b"caf\xE9";
            let v: serde_json::Value = serde_json::from_slice(&record.to_json()).unwrap();
            assert_eq!(v["raw_b64"], "Y2Fm6Q==");
            assert!(v.get("raw").is_none());
            // The same bytes at another address are also checked again, not taken on trust.
            let copy = input.to_vec();
            record.raw = &copy;
            let v: serde_json::Value = serde_json::from_slice(&record.to_json()).unwrap();
            assert_eq!(v["raw"].as_str().map(str::as_bytes), Some(input));
        }
        // Invalid UTF-8 in the frame: no text is claimed, and `raw_b64` keeps the bytes.
        let record = parse(b"<13>1 - h a - - - caf\xE9", &received(), &options);
        assert_eq!(record.raw_text, None);
        assert_eq!(record.message.as_deref(), Some("caf\u{FFFD}"));
    }

    /// A repeated key keeps its first value; keys that only look alike to the writer's
    /// filter (same length, same first and last bytes) are all written.
    #[test]
    fn fields_keep_the_first_of_a_repeated_key_and_every_distinct_one() {
        let options = ParseOptions {
            key_values: true,
            ..ParseOptions::default()
        };
        let input = b"<13>Jan  1 00:00:00 fw kv: axb=1 ayb=2 axb=3 ab=4 azb=5 ab=6 a=7";
        let record = parse(input, &received(), &options);
        let mut out = Vec::new();
        record.write_json(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#""fields":{"axb":"1","ayb":"2","ab":"4","azb":"5","a":"7"}"#),
            "{text}"
        );
    }

    /// The header's fields are written first, in their order, and a payload key that repeats
    /// one of them is left out, as if all were one list.
    #[test]
    fn header_fields_come_first_and_win_over_the_payload() {
        let input = b"<13>Nov 26 08:00:04 host 12: *Nov 26 08:00:04: CEF:0|V|P|1|100|n|5|sequence=4 clock=x device_timestamp=y a=b";
        let text = String::from_utf8(parse(input, &received(), &ParseOptions::default()).to_json())
            .unwrap();
        assert!(
            text.contains(concat!(
                r#""fields":{"device_timestamp":"Nov 26 08:00:04","sequence":"12","#,
                r#""cef_version":"0","device_vendor":"V","device_product":"P","#,
                r#""device_version":"1","signature_id":"100","name":"n","severity":"5","#,
                r#""clock":"x","a":"b"}"#
            )),
            "{text}"
        );
        let text = String::from_utf8(
            parse(
                b"<13>12: *Nov 26 08:00:04: %SYS-5-CONFIG_I: by \xff admin",
                &received(),
                &ParseOptions::default(),
            )
            .to_json(),
        )
        .unwrap();
        assert!(
            text.contains(concat!(
                r#""fields":{"clock":"unsynchronized","sequence":"12","facility":"SYS","#,
                r#""severity":"5","mnemonic":"CONFIG_I"}"#
            )),
            "{text}"
        );
    }

    /// `raw` reuses the message's escaped text when the message needed escapes: the result
    /// is still exactly the input, wherever the message sits in it.
    #[test]
    fn raw_with_an_escaped_message_inside_is_the_input() {
        let options = ParseOptions::default();
        for input in [
            &br#"<189>date=2026-11-26 time=08:00:09 devname="FGT \"HQ\"" msg="a\b""#[..],
            b"<34>1 2003-10-11T22:14:15.003Z host su - ID47 - say \"hi\"\tand\\ leave\n",
            b"<38>Nov 26 08:00:02 web-01 sshd[4321]: \"quoted\" \x01 control",
            b"<13>\"",
        ] {
            let record = parse(input, &received(), &options);
            let v: serde_json::Value = serde_json::from_slice(&record.to_json()).unwrap();
            assert_eq!(v["raw"].as_str().map(str::as_bytes), Some(input));
            assert_eq!(
                v["message"].as_str(),
                record.message.as_deref(),
                "{input:?}"
            );
        }
    }

    #[test]
    fn strict_mode_keeps_invalid_messages_raw() {
        let v = json(
            b"<13>1 2003-10-11T22:14:15.003Z h a - - [x][x]",
            &ParseOptions {
                format: FormatChoice::Rfc5424,
                ..ParseOptions::default()
            },
        );
        assert_eq!(v["format"], "raw");
        assert_eq!(v["pri"], 13);
        assert!(v["parse_error"].as_str().unwrap().contains("6.3.2"));
        assert_eq!(v["raw"], "<13>1 2003-10-11T22:14:15.003Z h a - - [x][x]");
    }

    #[test]
    fn legacy_year_is_inferred_and_flagged() {
        let v = json(b"<13>Dec 31 23:59:59 h app: x", &ParseOptions::default());
        assert_eq!(v["timestamp"], "2025-12-31T23:59:59Z");
        assert_eq!(v["timestamp_inferred"], true);
        assert_eq!(v["timestamp_raw"], "Dec 31 23:59:59");
        assert_eq!(v["dialect"], "linux");
    }

    #[test]
    fn per_source_zone_applies_to_zoneless_timestamps() {
        let options = ParseOptions {
            default_offset_minutes: -300,
            ..ParseOptions::default()
        };
        let v = json(b"<13>Jun  1 12:00:00 h app: x", &options);
        assert_eq!(v["timestamp"], "2026-06-01T12:00:00-05:00");
    }

    #[test]
    fn non_utf8_bytes_are_kept_as_base64() {
        let v = json(b"\xff\xfe garbage", &ParseOptions::default());
        assert_eq!(v["format"], "raw");
        assert_eq!(v["raw_b64"], "//4gZ2FyYmFnZQ==");
        assert!(v.get("raw").is_none());
    }

    #[test]
    fn missing_pri_gets_the_rfc3164_default_and_says_so() {
        let v = json(b"Jan 12 10:00:00 host app: x", &ParseOptions::default());
        assert_eq!(
            (v["pri"].as_u64(), v["pri_inferred"].as_bool()),
            (Some(13), Some(true))
        );
    }
}
