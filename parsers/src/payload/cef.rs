//! ArcSight Common Event Format: `CEF:Version|Vendor|Product|Version|SignatureID|Name|Severity|ext`.

use std::borrow::Cow;

use super::{split_unescaped, text, unescape, Fields};

const HEADER_NAMES: [&str; 7] = [
    "cef_version",
    "device_vendor",
    "device_product",
    "device_version",
    "signature_id",
    "name",
    "severity",
];

/// Parses a CEF payload (starting at `CEF:`); `None` when it is not CEF with all 7 header fields.
/// Header fields are named as in the CEF specification; extension keys are kept as written.
pub fn parse_cef(input: &[u8]) -> Option<Fields<'_>> {
    let body = input.strip_prefix(b"CEF:")?;
    let parts = split_unescaped(body, b'|', 8);
    if parts.len() < 8 {
        return None;
    }
    let mut fields: Fields<'_> = HEADER_NAMES
        .iter()
        .zip(&parts)
        .map(|(name, value)| (Cow::Borrowed(*name), unescape(value)))
        .collect();
    parse_extension(parts[7], &mut fields);
    Some(fields)
}

/// CEF extensions are `key=value` separated by spaces, where values may contain spaces: a value
/// runs until the space before the next `key=`.
fn parse_extension<'a>(ext: &'a [u8], fields: &mut Fields<'a>) {
    let is_key = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-';
    // Positions of every unescaped `=` whose preceding word is a key.
    let mut starts = Vec::new();
    let mut i = 0;
    while i < ext.len() {
        match ext[i] {
            b'\\' => i += 2,
            b'=' => {
                let key_start = ext[..i]
                    .iter()
                    .rposition(|&c| !is_key(c))
                    .map_or(0, |p| p + 1);
                if key_start < i && (key_start == 0 || ext[key_start - 1] == b' ') {
                    starts.push((key_start, i));
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    for (n, &(key_start, eq)) in starts.iter().enumerate() {
        let value_end = starts
            .get(n + 1)
            .map_or(ext.len(), |&(next_key, _)| next_key.saturating_sub(1));
        let value = &ext[(eq + 1).min(value_end)..value_end];
        let value = value.strip_suffix(b" ").unwrap_or(value);
        fields.push((text(&ext[key_start..eq]), unescape(value)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cef_header_and_extension_with_spaces_and_escapes() {
        let f = parse_cef(
            br"CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|10|src=10.0.0.1 dst=2.1.2.2 msg=Detected a\=b threat spt=1232",
        )
        .unwrap();
        assert_eq!(f[1], ("device_vendor".into(), "Security".into()));
        assert_eq!(f[6], ("severity".into(), "10".into()));
        let ext: Vec<_> = f[7..]
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect();
        assert_eq!(
            ext,
            [
                ("src", "10.0.0.1"),
                ("dst", "2.1.2.2"),
                ("msg", "Detected a=b threat"),
                ("spt", "1232")
            ]
        );
    }

    #[test]
    fn pipes_in_header_can_be_escaped() {
        let f = parse_cef(br"CEF:0|a\|b|p|1|id|n|5|").unwrap();
        assert_eq!(f[1].1, "a|b");
        assert!(parse_cef(b"CEF:0|only|three").is_none());
    }
}
