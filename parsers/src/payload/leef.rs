//! IBM QRadar Log Event Extended Format, versions 1.0 and 2.0.

use std::borrow::Cow;

use super::{split_unescaped, text, Fields};

/// Parses `LEEF:1.0|Vendor|Product|Version|EventID|k=v<TAB>k=v…` or LEEF 2.0, which adds a
/// delimiter field after EventID (a character, or hex such as `x09`/`0x5E`).
pub fn parse_leef(input: &[u8]) -> Option<Fields<'_>> {
    let body = input.strip_prefix(b"LEEF:")?;
    let head = split_unescaped(body, b'|', 6);
    if head.len() < 6 {
        return None;
    }
    let version = head[0];
    let (delimiter, attrs) = if version.starts_with(b"2") {
        let rest = split_unescaped(head[5], b'|', 2);
        if rest.len() < 2 {
            return None;
        }
        (leef2_delimiter(rest[0])?, rest[1])
    } else {
        (b'\t', head[5])
    };
    let names = ["leef_version", "vendor", "product", "version", "event_id"];
    let mut fields: Fields<'_> = names
        .iter()
        .zip(&head)
        .map(|(n, v)| (Cow::Borrowed(*n), text(v)))
        .collect();
    for pair in attrs.split(|&c| c == delimiter) {
        if let Some(eq) = pair.iter().position(|&c| c == b'=') {
            if eq > 0 {
                fields.push((text(&pair[..eq]), text(&pair[eq + 1..])));
            }
        }
    }
    Some(fields)
}

fn leef2_delimiter(spec: &[u8]) -> Option<u8> {
    match spec {
        [] => Some(b'\t'),
        [c] => Some(*c),
        _ => {
            let hex = spec
                .strip_prefix(b"0x")
                .or_else(|| spec.strip_prefix(b"x"))
                .or_else(|| spec.strip_prefix(b"X"))?;
            u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leef1_uses_tabs() {
        let f = parse_leef(
            b"LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|src=10.50.1.1\tdst=2.10.20.20\tsev=5",
        )
        .unwrap();
        assert_eq!(f[4], ("event_id".into(), "15345".into()));
        assert_eq!(f[5], ("src".into(), "10.50.1.1".into()));
        assert_eq!(f.len(), 8);
    }

    #[test]
    fn leef2_takes_a_hex_delimiter() {
        let f = parse_leef(b"LEEF:2.0|Lancope|StealthWatch|1.0|41|0x5E|src=10.0.1.8^dst=10.0.0.5")
            .unwrap();
        assert_eq!(f[6], ("dst".into(), "10.0.0.5".into()));
    }
}
