//! The parts of a stored record that forwarding reads, borrowed from its JSON where possible.

use std::borrow::Cow;

use serde::Deserialize;

/// `source` of a stored record.
#[derive(Debug, Default, Deserialize)]
pub struct SourceView<'a> {
    #[serde(borrow, default)]
    pub ip: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub listener: Option<Cow<'a, str>>,
}

/// A stored record as forwarding sees it; fields it does not need are skipped.
#[derive(Debug, Default, Deserialize)]
pub struct RecordView<'a> {
    #[serde(borrow, default)]
    pub received_at: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub source: Option<SourceView<'a>>,
    #[serde(borrow, default)]
    pub format: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub dialect: Option<Cow<'a, str>>,
    #[serde(default)]
    pub pri: Option<u8>,
    #[serde(borrow, default)]
    pub timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub hostname: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub app_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub proc_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub msg_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub raw: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub raw_b64: Option<Cow<'a, str>>,
}

impl<'a> RecordView<'a> {
    pub fn parse(json: &'a [u8]) -> Result<RecordView<'a>, String> {
        serde_json::from_slice(json).map_err(|e| format!("stored record is not JSON: {e}"))
    }

    /// The bytes as received.
    pub fn raw_bytes(&self) -> Option<Cow<'_, [u8]>> {
        use base64::Engine;
        if let Some(raw) = &self.raw {
            return Some(Cow::Borrowed(raw.as_bytes()));
        }
        let b64 = self.raw_b64.as_ref()?;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .ok()
            .map(Cow::Owned)
    }

    pub fn severity(&self) -> Option<u8> {
        self.pri.map(|p| p & 7)
    }

    pub fn facility(&self) -> Option<u8> {
        self.pri.map(|p| p >> 3)
    }
}

/// Where `needle` (not empty) first occurs in `hay`: a scan for its first byte, then a compare.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = hay[from..].iter().position(|c| *c == needle[0]) {
        if hay[from + p..].starts_with(needle) {
            return Some(from + p);
        }
        from += p + 1;
    }
    None
}

/// Where the last string value of a JSON object body starts (just after its opening quote):
/// the last `"` not escaped by an odd run of backslashes. `body` ends before the closing quote.
fn last_string_start(body: &[u8]) -> Option<usize> {
    let mut end = body.len();
    while let Some(q) = body[..end].iter().rposition(|c| *c == b'"') {
        let backslashes = body[..q].iter().rev().take_while(|c| **c == b'\\').count();
        if backslashes % 2 == 0 {
            return Some(q + 1);
        }
        end = q;
    }
    None
}

/// The fast path for records that go out as they came: a stored record's `format` and raw
/// bytes, found without parsing the whole record.
///
/// This relies on how `auditrelay-parsers` writes records: `format` is a top-level key that
/// no nested object has and that comes before `fields` (whose keys come from devices), and
/// `raw` or `raw_b64` is the last key. Inside a JSON string every `"` is escaped, so `"format":"`
/// and `,"raw":"` can only be structure. Anything unexpected returns `None` and the caller
/// parses the record in full. The raw bytes are unescaped into `out`.
pub fn fast_format_and_raw<'j>(json: &'j [u8], out: &mut Vec<u8>) -> Option<&'j [u8]> {
    const FORMAT: &[u8] = b"\"format\":\"";
    let at = find(json, FORMAT)? + FORMAT.len();
    let len = json[at..].iter().position(|c| *c == b'"')?;
    let format = &json[at..at + len];
    let body = json.strip_suffix(b"\"}")?;
    let start = last_string_start(body)?;
    let (key, value) = (&body[..start], &body[start..]);
    out.clear();
    if key.ends_with(b",\"raw\":\"") {
        unescape_json(value, out)?;
    } else if key.ends_with(b",\"raw_b64\":\"") {
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()?;
        out.extend_from_slice(&decoded);
    } else {
        return None;
    }
    Some(format)
}

/// The receive time of a stored record (its first key), without parsing the rest.
pub fn fast_received_at(json: &[u8]) -> Option<&str> {
    let rest = json.strip_prefix(b"{\"received_at\":\"")?;
    let len = rest.iter().position(|c| *c == b'"')?;
    std::str::from_utf8(&rest[..len]).ok()
}

/// Unescapes the body of a JSON string (between the quotes) into `out`; `None` if malformed
/// or if it contains an unescaped quote (then it was not one string).
fn unescape_json(s: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut i = 0;
    while i < s.len() {
        let run = s[i..]
            .iter()
            .position(|c| *c == b'\\' || *c == b'"')
            .unwrap_or(s.len() - i);
        out.extend_from_slice(&s[i..i + run]);
        i += run;
        if i == s.len() {
            break;
        }
        if s[i] == b'"' {
            return None;
        }
        let escape = *s.get(i + 1)?;
        i += 2;
        let byte = match escape {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hex = |at: usize| -> Option<u32> {
                    u32::from_str_radix(std::str::from_utf8(s.get(at..at + 4)?).ok()?, 16).ok()
                };
                let mut code = hex(i)?;
                i += 4;
                if (0xd800..0xdc00).contains(&code) && s.get(i..i + 2) == Some(b"\\u") {
                    let low = hex(i + 2)?;
                    if (0xdc00..0xe000).contains(&low) {
                        code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                        i += 6;
                    }
                }
                let c = char::from_u32(code)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            _ => return None,
        };
        out.push(byte);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_path_agrees_with_a_full_parse() {
        let record = auditrelay_parsers::parse(
            "<13>1 - h a - - [x@1 k=\"q\\\"\\\\ \u{e9}\u{1F600}\"] tab\there".as_bytes(),
            &auditrelay_parsers::timestamp::DateTime::from_unix_micros(1_795_687_200_000_000),
            &auditrelay_parsers::ParseOptions::default(),
        );
        let json = record.to_json();
        let mut raw = Vec::new();
        assert_eq!(fast_format_and_raw(&json, &mut raw), Some(&b"rfc5424"[..]));
        let full = RecordView::parse(&json).unwrap();
        assert_eq!(raw, full.raw_bytes().unwrap().as_ref());
        assert_eq!(fast_received_at(&json), Some("2026-11-26T10:00:00.000000Z"));
        let binary = auditrelay_parsers::parse(
            b"<13>1 - h a - - - \xff\xfe",
            &auditrelay_parsers::timestamp::DateTime::from_unix_micros(0),
            &auditrelay_parsers::ParseOptions::default(),
        )
        .to_json();
        assert!(fast_format_and_raw(&binary, &mut raw).is_some());
        assert_eq!(raw, b"<13>1 - h a - - - \xff\xfe");
        assert_eq!(fast_format_and_raw(b"{\"format\":\"raw\"}", &mut raw), None);
    }
}
