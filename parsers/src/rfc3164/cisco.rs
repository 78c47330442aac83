//! Cisco's own header in front of the TAG: `seq: [host:] [*|.]timestamp: %FAC-SEV-MNEMONIC: …`.

use super::{skip_spaces, timestamp, token, ClockMark, LegacyTimestamp};

/// What a Cisco prefix carried.
pub(super) struct CiscoPrefix<'a> {
    /// The `service sequence-numbers` counter as written (zero padding kept).
    pub seq: &'a [u8],
    /// Set by `logging origin-id hostname`.
    pub hostname: Option<&'a [u8]>,
    pub timestamp: Option<(LegacyTimestamp<'a>, Option<ClockMark>)>,
    pub rest: &'a [u8],
}

/// Reads a Cisco sequence-number prefix. It only counts as one when a timestamp or a
/// `%MNEMONIC` follows, so `<13>12: text` from another device is not taken for Cisco.
pub(super) fn prefix(input: &[u8]) -> Option<CiscoPrefix<'_>> {
    let n = input
        .iter()
        .take(11)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if n == 0 || n > 10 {
        return None;
    }
    let rest = input[n..].strip_prefix(b": ")?;
    let seq = &input[..n];
    let rest = skip_spaces(rest);
    let (tok, after) = token(rest);
    let (hostname, rest) = match tok.strip_suffix(b":") {
        Some(host)
            if !host.is_empty()
                && !host.starts_with(b"%")
                && timestamp(skip_spaces(after)).is_some() =>
        {
            (Some(host), skip_spaces(after))
        }
        _ => (None, rest),
    };
    match timestamp(rest) {
        Some((ts, mark, r)) => Some(CiscoPrefix {
            seq,
            hostname,
            timestamp: Some((ts, mark)),
            rest: skip_spaces(r),
        }),
        None if rest.starts_with(b"%") => Some(CiscoPrefix {
            seq,
            hostname,
            timestamp: None,
            rest,
        }),
        None => None,
    }
}

/// Splits `%FAC-SEV-MNEMONIC` (the `%` already part of the tag) into its three parts.
pub(super) fn mnemonic(tag: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let body = tag.strip_prefix(b"%")?;
    let dash = body.iter().position(|&c| c == b'-')?;
    let (facility, after) = (&body[..dash], &body[dash + 1..]);
    // The severity is one digit and a dash: `-5-`.
    let [severity @ b'0'..=b'9', b'-', ..] = after else {
        return None;
    };
    let name = &after[2..];
    (!facility.is_empty() && !name.is_empty()).then_some((
        facility,
        std::slice::from_ref(severity),
        name,
    ))
}
