//! Recognisers for vendors whose messages do not follow the RFC 3164 header at all
//! (FortiGate), or carry a payload shape of their own (Palo Alto CSV, MikroTik topics).

use std::borrow::Cow;

use super::{token, Dialect, HeaderFields, LegacyTimestamp, Rfc3164Message};
use crate::payload::{key_values_in, offset_within, text, Checked, Fields};
use crate::pri::Pri;
use crate::timestamp::parse_iso8601;

/// FortiGate sends no header at all: `<189>date=2024-01-12 time=10:00:00 devname="FG" …`.
/// The event time comes from `date`/`time` (and `tz` when present), the host from `devname`.
/// Fills `m` (as the legacy parser fills its caller's message, see `parse_checked`) and says
/// whether the message was FortiGate's.
///
/// Every FortiGate start is lower case, so one byte turns away the other dialects; that test
/// is inlined into the caller, where calling to make it was 40 instructions of every Cisco
/// message (callgrind).
#[inline(always)]
pub(super) fn fortigate<'a>(
    m: &mut Rfc3164Message<'a>,
    checked: Checked<'a>,
    pri: Option<Pri>,
    body: &'a [u8],
) -> bool {
    body.first().is_some_and(u8::is_ascii_lowercase)
        && fortigate_after_first_byte(m, checked, pri, body)
}

fn fortigate_after_first_byte<'a>(
    m: &mut Rfc3164Message<'a>,
    checked: Checked<'a>,
    pri: Option<Pri>,
    body: &'a [u8],
) -> bool {
    let starts = [&b"date="[..], b"logver=", b"devname=", b"eventtime="];
    if !starts.iter().any(|s| body.starts_with(s)) {
        return false;
    }
    let fields = key_values_in(checked, body);
    let pair = |key: &str| fields.iter().find(|(k, _)| k == key);
    let get = |key: &str| pair(key).map(|(_, v)| v);
    let timestamp = match (pair("date"), get("time")) {
        (Some((date_key, date)), Some(clock)) => {
            // `date` T `time` `tz` on the stack, read as ISO 8601.
            let zone = get("tz").map_or("", |z| z.as_ref());
            let mut iso = [0u8; 64];
            let parts = [date.as_bytes(), b"T", clock.as_bytes(), zone.as_bytes()];
            let len: usize = parts.iter().map(|p| p.len()).sum();
            if len <= iso.len() {
                let mut at = 0;
                for part in parts {
                    iso[at..at + part.len()].copy_from_slice(part);
                    at += part.len();
                }
                parse_iso8601(&iso[..len])
                    .filter(|(_, rest)| rest.is_empty())
                    .map(|(time, _)| LegacyTimestamp {
                        time,
                        raw: date_time_span(body, date_key, clock),
                    })
            } else {
                None
            }
        }
        _ => None,
    };
    let hostname = match get("devname") {
        Some(&Cow::Borrowed(name)) if !name.is_empty() => Some(name.as_bytes()),
        _ => value_span(body, b"devname="),
    };
    *m = Rfc3164Message {
        pri,
        timestamp,
        hostname,
        app_name: None,
        proc_id: None,
        msg: body,
        dialect: Some(Dialect::Fortigate),
        header: HeaderFields::default(),
        fields,
    };
    true
}

/// The bytes of `key=value` or `key="value"`'s value, borrowed from the input.
fn value_span<'a>(body: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let at = body
        .windows(key.len())
        .position(|w| w == key)
        .filter(|&p| p == 0 || body[p - 1] == b' ')?;
    let v = &body[at + key.len()..];
    let span = match v.strip_prefix(b"\"") {
        Some(q) => &q[..q.iter().position(|&c| c == b'"')?],
        None => &v[..v.iter().position(|&c| c == b' ').unwrap_or(v.len())],
    };
    (!span.is_empty()).then_some(span)
}

/// `date=… time=…` as written, for `timestamp_raw`: from the `date` key to the end of the
/// word holding the `time` value, found from where the pairs lie in `body` (searching the body
/// for the two keys again was a twentieth of the parse). The whole body when they are not in
/// that order or not borrowed from it.
fn date_time_span<'a>(body: &'a [u8], date_key: &str, time: &str) -> &'a [u8] {
    let start = offset_within(body, date_key.as_bytes());
    let end = offset_within(body, time.as_bytes()).map(|at| {
        let value_end = at + time.len();
        value_end + token(&body[value_end..]).0.len()
    });
    match (start, end) {
        (Some(start), Some(end)) if start < end => &body[start..end],
        _ => body,
    }
}

/// MikroTik RouterOS puts its log topics where the TAG would be: `system,info,account`.
/// A topic list has at least two lower-case parts, one of them a severity topic. Returns the
/// word at the start of `input` when it is one. Inlined, so that the first-byte test costs a
/// message no call (bench/parse-instructions.sh: called, Cisco IOS took 22 instructions more).
#[inline(always)]
pub(super) fn mikrotik_topics(input: &[u8]) -> Option<&[u8]> {
    const SEVERITIES: [&[u8]; 5] = [b"info", b"warning", b"error", b"critical", b"debug"];
    // Topics are lower case: this first test turns away TAGs and mnemonics before the word is
    // even cut.
    if !input.first().is_some_and(u8::is_ascii_lowercase) {
        return None;
    }
    let token = token(input).0;
    if !token.contains(&b',') {
        return None;
    }
    let mut parts = token.split(|&c| c == b',');
    let well_formed = parts.clone().all(|p| {
        !p.is_empty()
            && p.iter()
                .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    });
    (well_formed && parts.any(|p| SEVERITIES.contains(&p))).then_some(token)
}

/// Column names of PAN-OS TRAFFIC and THREAT logs (positions 0–30 share one layout).
const PANOS_COLUMNS: [&str; 31] = [
    "future_use_1",
    "receive_time",
    "serial",
    "type",
    "subtype",
    "future_use_2",
    "generated_time",
    "src",
    "dst",
    "natsrc",
    "natdst",
    "rule",
    "srcuser",
    "dstuser",
    "app",
    "vsys",
    "from_zone",
    "to_zone",
    "inbound_if",
    "outbound_if",
    "log_action",
    "future_use_3",
    "session_id",
    "repeat_count",
    "sport",
    "dport",
    "natsport",
    "natdport",
    "flags",
    "proto",
    "action",
];

/// Palo Alto PAN-OS CSV: `1,2024/01/12 10:00:00,012345678901,TRAFFIC,end,…`. The common columns
/// are named; TRAFFIC and THREAT logs also get their addressing columns.
pub(super) fn paloalto(msg: &[u8]) -> Option<Fields<'_>> {
    if !msg.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let comma = msg.iter().position(|&c| c == b',')?;
    if comma == 0 || !msg[..comma].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let ts = msg.get(comma + 1..comma + 20)?;
    let shape_ok = ts.iter().enumerate().all(|(i, &c)| match i {
        4 | 7 => c == b'/',
        10 => c == b' ',
        13 | 16 => c == b':',
        _ => c.is_ascii_digit(),
    });
    if !shape_ok || msg.get(comma + 20) != Some(&b',') {
        return None;
    }
    let columns = csv(msg);
    let kind = columns.get(3).map(|c| c.as_ref()).unwrap_or("");
    let named = if matches!(kind, "TRAFFIC" | "THREAT") {
        PANOS_COLUMNS.len()
    } else {
        7
    };
    Some(
        PANOS_COLUMNS
            .iter()
            .zip(columns)
            .take(named)
            .filter(|(name, value)| !name.starts_with("future_use") && !value.is_empty())
            .map(|(name, value)| (Cow::Borrowed(*name), value))
            .collect(),
    )
}

/// Splits a CSV line; double-quoted columns may contain commas (`""` is a quote).
fn csv(line: &[u8]) -> Vec<Cow<'_, str>> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        if line.get(i) == Some(&b'"') {
            let mut value = Vec::new();
            let mut j = i + 1;
            while j < line.len() {
                if line[j] == b'"' {
                    if line.get(j + 1) == Some(&b'"') {
                        value.push(b'"');
                        j += 2;
                        continue;
                    }
                    break;
                }
                value.push(line[j]);
                j += 1;
            }
            out.push(Cow::Owned(String::from_utf8_lossy(&value).into_owned()));
            i = (j + 1).min(line.len());
            match line.get(i) {
                Some(b',') => i += 1,
                _ => break,
            }
        } else {
            let end = line[i..].iter().position(|&c| c == b',').map(|p| p + i);
            out.push(text(&line[i..end.unwrap_or(line.len())]));
            match end {
                Some(e) => i = e + 1,
                None => break,
            }
        }
    }
    out
}

/// A Junos event tag at the start of the content: `UI_COMMIT: …`, `SNMP_TRAP_LINK_DOWN: …`.
pub(super) fn junos_event_id(msg: &[u8]) -> Option<&[u8]> {
    if !msg.first().is_some_and(u8::is_ascii_uppercase) {
        return None;
    }
    let len = msg
        .iter()
        .take(64)
        .position(|&c| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_'))?;
    let id = &msg[..len];
    (msg[len] == b':' && len >= 3 && id.contains(&b'_')).then_some(id)
}
