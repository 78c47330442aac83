//! Generic `key=value` payloads (FortiGate, many appliances): bare or quoted values.

use std::borrow::Cow;

use super::{text, unescape, Fields};

fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b':')
}

/// Reads `key=value` pairs separated by spaces (or commas after a quoted value); values are bare
/// words or `"…"`/`'…'` with backslash escapes. Text that is not a pair is skipped, so a sentence
/// with a few pairs in it yields just those pairs.
pub fn parse_key_values(input: &[u8]) -> Fields<'_> {
    // One allocation: at most one pair per `=`.
    let mut fields: Fields<'_> = Vec::with_capacity(input.iter().filter(|&&c| c == b'=').count());
    let mut i = 0;
    while i < input.len() {
        while i < input.len() && matches!(input[i], b' ' | b'\t' | b',' | b';') {
            i += 1;
        }
        let key_start = i;
        while i < input.len() && is_key_char(input[i]) {
            i += 1;
        }
        if i == key_start || input.get(i) != Some(&b'=') {
            // Not a pair: skip the word.
            while i < input.len() && !matches!(input[i], b' ' | b'\t') {
                i += 1;
            }
            continue;
        }
        let key = text(&input[key_start..i]);
        i += 1;
        let value: Cow<'_, str> = match input.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                let start = i + 1;
                let mut j = start;
                while j < input.len() && input[j] != q {
                    j += if input[j] == b'\\' { 2 } else { 1 };
                }
                let end = j.min(input.len());
                i = (end + 1).min(input.len());
                unescape(&input[start..end])
            }
            _ => {
                let start = i;
                while i < input.len() && !matches!(input[i], b' ' | b'\t') {
                    i += 1;
                }
                text(&input[start..i])
            }
        };
        fields.push((key, value));
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortigate_style_pairs() {
        let f = parse_key_values(
            br#"date=2024-01-12 time=10:00:00 devname="FG 100" msg="a \"quoted\" word" n=1"#,
        );
        let f: Vec<_> = f.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        assert_eq!(
            f,
            [
                ("date", "2024-01-12"),
                ("time", "10:00:00"),
                ("devname", "FG 100"),
                ("msg", "a \"quoted\" word"),
                ("n", "1")
            ]
        );
    }

    #[test]
    fn words_that_are_not_pairs_are_skipped() {
        let f = parse_key_values(b"user admin logged in from=10.0.0.1 via ssh");
        assert_eq!(f, vec![("from".into(), "10.0.0.1".into())]);
        assert!(parse_key_values(b"x=\"unterminated").len() == 1);
    }
}
