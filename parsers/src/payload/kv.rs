//! Generic `key=value` payloads (FortiGate, many appliances): bare or quoted values.

use std::borrow::Cow;

use super::{text, unescape, Checked, Fields};

/// Byte classes for the scan, one table lookup per byte instead of a chain of comparisons.
const KEY: u8 = 1;
/// Ends a bare value or a word.
const SPACE: u8 = 2;
/// Skipped between pairs.
const SEPARATOR: u8 = 4;

const CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':') {
            table[c] |= KEY;
        }
        if matches!(b, b' ' | b'\t') {
            table[c] |= SPACE | SEPARATOR;
        }
        if matches!(b, b',' | b';') {
            table[c] |= SEPARATOR;
        }
        c += 1;
    }
    table
};

fn is(c: u8, class: u8) -> bool {
    CLASS[usize::from(c)] & class != 0
}

/// Where the run of `class` bytes from `at` ends. An iterator, not an indexed loop: the
/// indexed loop checked the bounds twice per byte and was a sixth of a FortiGate parse
/// (callgrind).
fn skip_while(input: &[u8], at: usize, class: u8) -> usize {
    input[at..]
        .iter()
        .position(|&c| !is(c, class))
        .map_or(input.len(), |n| at + n)
}

/// Where the first `a` or `b` from `at` is, or the end. A byte loop, not `memchr2`: values
/// are a few bytes long, and the vectorised search's set-up cost more than the bytes it
/// skipped (bench/parse-instructions.sh).
fn find2(input: &[u8], at: usize, a: u8, b: u8) -> usize {
    input[at..]
        .iter()
        .position(|&c| c == a || c == b)
        .map_or(input.len(), |n| at + n)
}

/// Reads `key=value` pairs separated by spaces (or commas after a quoted value); values are bare
/// words or `"…"`/`'…'` with backslash escapes. Text that is not a pair is skipped, so a sentence
/// with a few pairs in it yields just those pairs.
pub fn parse_key_values(input: &[u8]) -> Fields<'_> {
    key_values_in(Checked::new(input), input)
}

/// [`parse_key_values`] on `input` lying within `checked`, a message already checked as UTF-8.
pub(crate) fn key_values_in<'a>(checked: Checked<'a>, input: &'a [u8]) -> Fields<'a> {
    match checked.str_of(input) {
        // Every cut falls on an ASCII byte or an end, so each piece is a slice of the text by
        // index: no per-piece containment test (it was a tenth of a FortiGate parse).
        Some(whole) => scan(input, |start, end| match whole.get(start..end) {
            Some(s) => Cow::Borrowed(s),
            None => text(&input[start..end]),
        }),
        None => scan(input, |start, end| text(&input[start..end])),
    }
}

/// The scan itself; `piece(start, end)` is the text of `input[start..end]`.
fn scan<'a>(input: &'a [u8], piece: impl Fn(usize, usize) -> Cow<'a, str>) -> Fields<'a> {
    // One allocation: at most one pair per `=`.
    let mut fields: Fields<'a> = Vec::with_capacity(memchr::memchr_iter(b'=', input).count());
    let mut i = 0;
    while i < input.len() {
        i = skip_while(input, i, SEPARATOR);
        let key_start = i;
        i = skip_while(input, i, KEY);
        if i == key_start || input.get(i) != Some(&b'=') {
            // Not a pair: skip the word. An indexed loop, unlike `skip_while`: written with
            // it, FortiGate's parse took 180 instructions more (bench/parse-instructions.sh).
            while i < input.len() && !is(input[i], SPACE) {
                i += 1;
            }
            continue;
        }
        let key = piece(key_start, i);
        i += 1;
        let value: Cow<'a, str> = match input.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                let start = i + 1;
                let mut j = find2(input, start, q, b'\\');
                let mut escaped = false;
                // An escape takes the byte after it, whatever it is.
                while j < input.len() && input[j] == b'\\' {
                    escaped = true;
                    j = find2(input, (j + 2).min(input.len()), q, b'\\');
                }
                i = (j + 1).min(input.len());
                if escaped {
                    unescape(&input[start..j])
                } else {
                    piece(start, j)
                }
            }
            _ => {
                let start = i;
                i = find2(input, i, b' ', b'\t');
                piece(start, i)
            }
        };
        fields.push((key, value));
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::text;

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

    /// The scan before it used a class table, memchr and one UTF-8 check: the same answers.
    fn reference_key_char(c: u8) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b':')
    }

    /// Reads `key=value` pairs separated by spaces (or commas after a quoted value); values are bare
    /// words or `"…"`/`'…'` with backslash escapes. Text that is not a pair is skipped, so a sentence
    /// with a few pairs in it yields just those pairs.
    fn reference(input: &[u8]) -> Fields<'_> {
        // One allocation: at most one pair per `=`.
        let mut fields: Fields<'_> =
            Vec::with_capacity(input.iter().filter(|&&c| c == b'=').count());
        let mut i = 0;
        while i < input.len() {
            while i < input.len() && matches!(input[i], b' ' | b'\t' | b',' | b';') {
                i += 1;
            }
            let key_start = i;
            while i < input.len() && reference_key_char(input[i]) {
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

    #[test]
    fn answers_as_the_byte_by_byte_scan_did() {
        let cases: [&[u8]; 8] = [
            b"a=\"x\\\" b=\"\\",
            b"k=\"v\\",
            b"k=\xff\xfe v=ok q=\"\xc3\xa9\"",
            b"a='it''s' b=x,c=y;d=z",
            b"date=2024-01-12 time=10:00:00 devname=\"FG 100\" msg=\"a \\\"q\\\" w\" n=1",
            b"=x ==y a==b c=\t d= e=\"\"",
            b"word a/b=c x=1\ty=2",
            b"",
        ];
        for input in cases {
            assert_eq!(parse_key_values(input), reference(input), "{input:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn answers_as_the_byte_by_byte_scan_did_on_any_input(
            input in crate::oracle::bytes_of(b"ab=\"' \t,;\\\xc3\xa9-:.", 40)
        ) {
            proptest::prop_assert_eq!(parse_key_values(&input), reference(&input));
        }
    }
}
