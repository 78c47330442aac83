//! RFC 3164 as devices really send it: an optional PRI, a timestamp in one of several shapes,
//! an optional hostname, a TAG with an optional `[pid]`, and the content; plus the named
//! dialects of common network gear (see [`Dialect`]).
//!
//! The parser never fails on a message that has a PRI: RFC 3164 §4.3.2 says a relay keeps what
//! it cannot structure as content. Without a PRI it needs a timestamp or a known dialect at the
//! start, otherwise the caller keeps the message raw.

mod cisco;
mod dialect;
mod header_fields;
mod vendors;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

pub use dialect::Dialect;
pub use header_fields::HeaderFields;

use crate::payload::{Checked, Fields};
use crate::pri::{parse_pri, Pri, PriError, PriRead};
use crate::timestamp::{parse_bsd, parse_iso8601, parse_year_first, LegacyTime};

/// The longest TAG we accept; RFC 3164 says 32, real daemons write longer ones.
const MAX_TAG: usize = 64;
/// The longest hostname (RFC 1035 names, and IPv6 with a zone fit comfortably).
const MAX_HOSTNAME: usize = 255;

/// Why a message could not be read as RFC 3164.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rfc3164Error {
    /// `<…>` is there but not a PRIVAL from 0 to 191 without leading zeros.
    InvalidPri,
    /// No PRI, and neither a timestamp nor a known dialect at the start.
    NoPriNoHeader,
}

impl std::fmt::Display for Rfc3164Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::InvalidPri => "rfc3164: PRI must be <0> to <191> without leading zeros",
            Self::NoPriNoHeader => "no PRI, and no timestamp or known device format at the start",
        })
    }
}

impl std::error::Error for Rfc3164Error {}

/// Options for legacy parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rfc3164Options {
    /// Read `key=value` pairs from messages that no dialect claimed.
    pub key_values: bool,
}

/// How the timestamp's clock was marked by a Cisco device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockMark {
    /// `*`: the clock was never set or is not authoritative.
    Unsynchronized,
    /// `.`: the clock was synchronised but has lost its source.
    SyncLost,
}

impl ClockMark {
    /// The value of the record's `clock` field.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unsynchronized => "unsynchronized",
            Self::SyncLost => "sync-lost",
        }
    }
}

/// A legacy timestamp: its parts and its text as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyTimestamp<'a> {
    pub time: LegacyTime,
    pub raw: &'a [u8],
}

/// A parsed legacy message, borrowing from the input.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rfc3164Message<'a> {
    /// `None` when the message had no PRI (RFC 3164 §4.3.3 then assumes user.notice, 13).
    pub pri: Option<Pri>,
    pub timestamp: Option<LegacyTimestamp<'a>>,
    pub hostname: Option<&'a [u8]>,
    /// The TAG (program name, or a Cisco `%FAC-SEV-MNEMONIC`, or MikroTik topics).
    pub app_name: Option<&'a [u8]>,
    pub proc_id: Option<&'a [u8]>,
    /// The content after the header.
    pub msg: &'a [u8],
    pub dialect: Option<Dialect>,
    /// What the header carries in fixed places (Cisco's sequence number, clock mark, device
    /// timestamp and mnemonic, MikroTik's topics). A record writes these first in its `fields`.
    pub header: HeaderFields<'a>,
    /// Pairs read from the content (key=value, CEF, LEEF, PAN-OS, a Junos event ID); the
    /// header's own fields are in `header`, not here.
    pub fields: Fields<'a>,
}

/// Splits off the first space-separated token.
fn token(input: &[u8]) -> (&[u8], &[u8]) {
    let end = input.iter().position(|&c| c == b' ').unwrap_or(input.len());
    (&input[..end], &input[end..])
}

fn skip_spaces(input: &[u8]) -> &[u8] {
    let n = input.iter().take_while(|&&c| c == b' ').count();
    &input[n..]
}

/// A timestamp at the start of `input` in any shape we know, with an optional Cisco clock mark
/// before it and an optional `:` after it (Cisco ends its timestamp with one).
fn timestamp(input: &[u8]) -> Option<(LegacyTimestamp<'_>, Option<ClockMark>, &[u8])> {
    let (mark, body) = match input.first() {
        Some(b'*') => (Some(ClockMark::Unsynchronized), &input[1..]),
        Some(b'.') => (Some(ClockMark::SyncLost), &input[1..]),
        _ => (None, input),
    };
    let (time, rest) = parse_bsd(body)
        .or_else(|| parse_year_first(body))
        .or_else(|| parse_iso8601(body))?;
    let raw = &body[..body.len() - rest.len()];
    let rest = rest.strip_prefix(b":").unwrap_or(rest);
    // A timestamp must end at a space or the end of the message.
    if !(rest.is_empty() || rest[0] == b' ') {
        return None;
    }
    Some((LegacyTimestamp { time, raw }, mark, rest))
}

fn is_ip_address(token: &[u8]) -> bool {
    // Only tokens that can be addresses pay for the address parsers.
    let v6 = token.contains(&b':');
    if !v6 && !token.first().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    std::str::from_utf8(token).is_ok_and(|s| {
        if v6 {
            // A zone index (`fe80::1%eth0`) is not part of the address.
            Ipv6Addr::from_str(s.split('%').next().unwrap_or(s)).is_ok()
        } else {
            Ipv4Addr::from_str(s).is_ok()
        }
    })
}

fn is_hostname_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_')
}

/// Decides whether the token after a timestamp is a hostname. IP addresses always are, even an
/// IPv6 address ending in `:` (`2001:db8::`), which a TAG check would take for `tag:`.
fn hostname(token: &[u8]) -> bool {
    if token.is_empty() || token.len() > MAX_HOSTNAME {
        return false;
    }
    if is_ip_address(token) {
        return true;
    }
    // No MikroTik topic list passes this: its parts are joined by commas.
    token.iter().all(|&c| is_hostname_char(c))
}

/// Bytes a TAG is made of, as a table: one lookup per byte instead of a chain of comparisons
/// (the chain was a twentieth of a Cisco message's parse).
const TAG_CHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-');
        c += 1;
    }
    table
};

/// A TAG and what follows it.
#[derive(Debug, PartialEq)]
struct Tag<'a> {
    name: &'a [u8],
    pid: Option<&'a [u8]>,
    rest: &'a [u8],
}

/// `tag[pid]:`, `tag:` or a Cisco `%FAC-SEV-MNEMONIC:`. Read in one pass over the name and
/// one over the pid: cutting the token at its space first and then searching it for `:` and
/// `[` read the TAG four times over (bench/parse-instructions.sh).
fn tag(input: &[u8]) -> Option<Tag<'_>> {
    // `%` only opens a Cisco mnemonic.
    let body_start = usize::from(input.first() == Some(&b'%'));
    let name_end = input[body_start..]
        .iter()
        .position(|&c| !TAG_CHAR[usize::from(c)])
        .map_or(input.len(), |n| body_start + n);
    let name = &input[..name_end];
    if name.is_empty() || name.len() > MAX_TAG {
        return None;
    }
    let (pid, colon) = match input.get(name_end) {
        Some(b':') => (None, name_end),
        Some(b'[') => {
            // The pid runs to the first `:` of the word, and the word must not end first.
            let open = name_end + 1;
            let colon = open + input[open..].iter().position(|&c| c == b':' || c == b' ')?;
            if input[colon] != b':' || input[colon - 1] != b']' || colon - 1 == open {
                return None;
            }
            (Some(&input[open..colon - 1]), colon)
        }
        _ => return None,
    };
    let rest = &input[colon + 1..];
    Some(Tag {
        name,
        pid,
        rest: rest.strip_prefix(b" ").unwrap_or(rest),
    })
}

/// CEF and LEEF start with `NAME:`, which would otherwise be read as a TAG.
fn starts_with_payload(rest: &[u8]) -> bool {
    rest.starts_with(b"CEF:") || rest.starts_with(b"LEEF:")
}

/// Parses a legacy message. Fails only for an invalid PRI, or for a message with neither PRI
/// nor a recognisable header (the caller then keeps it raw).
pub fn parse_rfc3164(
    input: &[u8],
    options: Rfc3164Options,
) -> Result<Rfc3164Message<'_>, Rfc3164Error> {
    let mut m = Rfc3164Message::default();
    parse_checked(
        &mut m,
        Checked::new(input),
        input,
        parse_pri(input),
        options,
    )?;
    Ok(m)
}

/// [`parse_rfc3164`] into `m`, which starts empty (`Default`), on input already checked as
/// UTF-8 (`checked` covers `input`), with its PRI already read (`pri` is [`parse_pri`] of
/// `input`).
///
/// It fills the caller's message rather than returning one: returned in a `Result`, the
/// message was copied out of it with a call to `memcpy` for every message (callgrind), even
/// inlined, as it is into its two callers.
#[inline(always)]
pub(crate) fn parse_checked<'a>(
    m: &mut Rfc3164Message<'a>,
    checked: Checked<'a>,
    input: &'a [u8],
    pri: PriRead<'a>,
    options: Rfc3164Options,
) -> Result<(), Rfc3164Error> {
    debug_assert_eq!(pri, parse_pri(input), "the PRI handed in is the input's");
    let (body, pri) = match pri {
        Ok((rest, pri)) => (rest, Some(pri)),
        Err(PriError::Missing) => (input, None),
        Err(PriError::OutOfRange) => return Err(Rfc3164Error::InvalidPri),
    };
    if vendors::fortigate(m, checked, pri, body) {
        return Ok(());
    }
    m.pri = pri;
    let mut rest = body;
    let mut year_first = false;

    if let Some(p) = cisco::prefix(rest) {
        m.header.sequence = Some(p.seq);
        m.hostname = p.hostname;
        if let Some((ts, k)) = p.timestamp {
            year_first = ts.raw.first().is_some_and(u8::is_ascii_digit);
            m.timestamp = Some(ts);
            m.header.clock = k;
        }
        rest = p.rest;
    } else if let Some((ts, k, r)) = timestamp(rest) {
        year_first = ts.raw.first().is_some_and(u8::is_ascii_digit) && ts.raw.get(4) == Some(&b' ');
        m.timestamp = Some(ts);
        m.header.clock = k;
        rest = skip_spaces(r);
        let (tok, after) = token(rest);
        if hostname(tok) {
            m.hostname = Some(tok);
            rest = skip_spaces(after);
            // Cisco ASA writes `host : %ASA-…`.
            if let Some(r) = rest.strip_prefix(b": ") {
                rest = r;
            }
        }
        // IOS-XE behind a standard header: `host 123: *Mar  1 …: %SYS-…`.
        if let Some(p) = cisco::prefix(rest) {
            m.header.sequence = Some(p.seq);
            m.header.device_timestamp = p.timestamp.map(|(ts, _)| ts.raw);
            rest = p.rest;
        }
    } else if pri.is_none() && vendors::mikrotik_topics(rest).is_none() {
        return Err(Rfc3164Error::NoPriNoHeader);
    }

    if let Some(topics) = vendors::mikrotik_topics(rest) {
        m.app_name = Some(topics);
        m.dialect = Some(Dialect::Mikrotik);
        m.header.topics = true;
        rest = skip_spaces(token(rest).1);
    } else if let Some(t) = tag(rest).filter(|_| !starts_with_payload(rest)) {
        m.app_name = Some(t.name);
        m.proc_id = t.pid;
        rest = t.rest;
    }
    m.msg = rest;
    dialect::classify(m, checked, year_first, options);
    Ok(())
}

#[cfg(test)]
mod tests;
