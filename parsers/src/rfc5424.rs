//! RFC 5424, strictly: the full ABNF of §6 with the length and character limits of the header
//! fields, structured data with escapes, and MSG with an optional UTF-8 BOM.
//!
//! The parser borrows from the input: header fields and SD values are slices, and an SD value is
//! unescaped only when it is read (most values have no backslash at all).

use std::borrow::Cow;
use std::fmt;

use nom::character::complete::digit1;
use nom::IResult;

use crate::payload::Checked;
use crate::pri::{parse_pri, Pri, PriRead};
use crate::swar;
use crate::timestamp::{parse_rfc3339_strict, DateTime};

/// The UTF-8 byte order mark that RFC 5424 §6.4 puts before a UTF-8 MSG.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

const MAX_HOSTNAME: usize = 255;
const MAX_APP_NAME: usize = 48;
const MAX_PROCID: usize = 128;
const MAX_MSGID: usize = 32;
const MAX_SD_NAME: usize = 32;

/// Which part of the message was wrong; a caller can match on it, a person can read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rfc5424ErrorKind {
    /// `<PRIVAL>` missing, with a leading zero, or above 191.
    Pri,
    /// VERSION is not 1–999 followed by a space.
    Version,
    /// TIMESTAMP is neither `-` nor a valid RFC 3339 time with a real date.
    Timestamp,
    /// HOSTNAME is not `-` or 1–255 printable US-ASCII characters.
    Hostname,
    /// APP-NAME is not `-` or 1–48 printable US-ASCII characters.
    AppName,
    /// PROCID is not `-` or 1–128 printable US-ASCII characters.
    ProcId,
    /// MSGID is not `-` or 1–32 printable US-ASCII characters.
    MsgId,
    /// STRUCTURED-DATA is neither `-` nor a sequence of `[...]` elements.
    StructuredData,
    /// An SD-ID is empty, too long or has a forbidden character.
    SdId,
    /// The same SD-ID appears twice (§6.3.2 forbids it).
    SdIdDuplicated,
    /// An SD-PARAM is malformed (name, `=`, quotes, an unescaped `]`, or not UTF-8).
    SdParam,
    /// MSG starts with a BOM but is not valid UTF-8 (§6.4).
    MsgNotUtf8,
    /// Something other than a space or the end follows STRUCTURED-DATA.
    AfterStructuredData,
}

impl Rfc5424ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            Self::Pri => "PRI must be <0> to <191> without leading zeros",
            Self::Version => "VERSION must be 1 to 999 followed by a space",
            Self::Timestamp => "TIMESTAMP must be '-' or RFC 3339 (upper-case T/Z, at most 6 fraction digits, a real date)",
            Self::Hostname => "HOSTNAME must be '-' or 1-255 printable US-ASCII characters",
            Self::AppName => "APP-NAME must be '-' or 1-48 printable US-ASCII characters",
            Self::ProcId => "PROCID must be '-' or 1-128 printable US-ASCII characters",
            Self::MsgId => "MSGID must be '-' or 1-32 printable US-ASCII characters",
            Self::StructuredData => "STRUCTURED-DATA must be '-' or one or more [SD-ELEMENT]",
            Self::SdId => "SD-ID must be 1-32 printable US-ASCII characters except '=', ' ', ']' and '\"'",
            Self::SdIdDuplicated => "the same SD-ID appears more than once (RFC 5424 section 6.3.2)",
            Self::SdParam => "SD-PARAM must be NAME=\"value\" with '\"', '\\' and ']' escaped and UTF-8 values",
            Self::MsgNotUtf8 => "MSG starts with a BOM but is not valid UTF-8 (RFC 5424 section 6.4)",
            Self::AfterStructuredData => "expected a space and MSG, or the end, after STRUCTURED-DATA",
        }
    }
}

/// A parse failure: what was wrong and the byte offset where it was noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc5424Error {
    pub kind: Rfc5424ErrorKind,
    pub offset: usize,
}

impl fmt::Display for Rfc5424Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rfc5424: {} (at byte {})",
            self.kind.describe(),
            self.offset
        )
    }
}

impl std::error::Error for Rfc5424Error {}

/// Where the parser may knowingly depart from the letter of the RFC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rfc5424Options {
    /// Keep messages that repeat an SD-ID (devices do send them) instead of rejecting them.
    pub allow_duplicate_sd_ids: bool,
}

/// A parsed RFC 5424 message, borrowing from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rfc5424Message<'a> {
    pub pri: Pri,
    pub version: u16,
    /// The time and its text exactly as written; `None` for NILVALUE.
    pub timestamp: Option<(DateTime, &'a str)>,
    pub hostname: Option<&'a str>,
    pub app_name: Option<&'a str>,
    pub proc_id: Option<&'a str>,
    pub msg_id: Option<&'a str>,
    /// Elements in order, duplicates kept; empty for NILVALUE.
    pub structured_data: Vec<SdElement<'a>>,
    /// The MSG part; `None` when the message ends after STRUCTURED-DATA.
    pub msg: Option<Msg<'a>>,
    /// Whether an SD-ID was repeated (only possible with `allow_duplicate_sd_ids`).
    pub has_duplicate_sd_id: bool,
}

/// One `[SD-ID params…]` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdElement<'a> {
    pub id: &'a str,
    pub params: Vec<SdParam<'a>>,
}

/// One `name="value"` pair; the value is kept escaped as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdParam<'a> {
    pub name: &'a str,
    pub escaped_value: &'a str,
}

impl<'a> SdParam<'a> {
    /// The value with `\"`, `\\` and `\]` undone; any other backslash is kept, as §6.3.3 says.
    pub fn value(&self) -> Cow<'a, str> {
        unescape_param_value(self.escaped_value)
    }
}

/// Undoes the three escapes of RFC 5424 §6.3.3, borrowing when there is nothing to undo.
pub fn unescape_param_value(escaped: &str) -> Cow<'_, str> {
    if !escaped.contains('\\') {
        return Cow::Borrowed(escaped);
    }
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&next @ ('"' | '\\' | ']')) = chars.peek() {
                out.push(next);
                chars.next();
                continue;
            }
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Escapes `"`, `\` and `]` for a PARAM-VALUE (RFC 5424 §6.3.3), borrowing when none occur.
pub fn escape_param_value(value: &str) -> Cow<'_, str> {
    if !value.contains(['"', '\\', ']']) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    Cow::Owned(out)
}

impl Rfc5424Message<'_> {
    /// Writes the message in RFC 5424 syntax; parsing the output gives back an equal message.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let nil = |v: Option<&str>| v.unwrap_or("-").to_string();
        out.extend_from_slice(format!("<{}>{} ", self.pri.value(), self.version).as_bytes());
        out.extend_from_slice(self.timestamp.map_or("-", |(_, text)| text).as_bytes());
        for field in [self.hostname, self.app_name, self.proc_id, self.msg_id] {
            out.push(b' ');
            out.extend_from_slice(nil(field).as_bytes());
        }
        out.push(b' ');
        if self.structured_data.is_empty() {
            out.push(b'-');
        }
        for element in &self.structured_data {
            out.push(b'[');
            out.extend_from_slice(element.id.as_bytes());
            for p in &element.params {
                out.extend_from_slice(format!(" {}=\"{}\"", p.name, p.escaped_value).as_bytes());
            }
            out.push(b']');
        }
        if let Some(msg) = self.msg {
            out.push(b' ');
            if msg.bom {
                out.extend_from_slice(BOM);
            }
            out.extend_from_slice(msg.bytes);
        }
    }
}

/// The MSG part: bytes after the single space that follows STRUCTURED-DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msg<'a> {
    /// Whether MSG started with the UTF-8 BOM (not included in `bytes`).
    pub bom: bool,
    pub bytes: &'a [u8],
}

type Res<'a, T> = Result<(&'a [u8], T), Rfc5424Error>;

/// The input, and as much of it as is valid UTF-8 viewed as text: one validation pass instead
/// of one per field, which profiling showed to be a sixth of the parse time.
struct Cursor<'a> {
    start: &'a [u8],
    text: &'a str,
}

impl<'a> Cursor<'a> {
    fn new(start: &'a [u8]) -> Cursor<'a> {
        let text = match std::str::from_utf8(start) {
            Ok(text) => text,
            // The valid prefix is valid by definition; header and SD lie within it or are bad.
            Err(e) => std::str::from_utf8(&start[..e.valid_up_to()]).unwrap_or(""),
        };
        Cursor { start, text }
    }

    fn err(&self, at: &[u8], kind: Rfc5424ErrorKind) -> Rfc5424Error {
        Rfc5424Error {
            kind,
            offset: self.start.len() - at.len(),
        }
    }

    /// The text of `token`, a sub-slice of the input; `None` if it is not valid UTF-8.
    fn str_of(&self, token: &'a [u8]) -> Option<&'a str> {
        let offset = (token.as_ptr() as usize).checked_sub(self.start.as_ptr() as usize)?;
        self.text.get(offset..offset + token.len())
    }
}

fn is_print_usascii(c: u8) -> bool {
    (33..=126).contains(&c)
}

fn is_sd_name_char(c: u8) -> bool {
    is_print_usascii(c) && c != b'=' && c != b']' && c != b'"'
}

fn space<'a>(
    cur: &Cursor<'a>,
    input: &'a [u8],
    kind: Rfc5424ErrorKind,
) -> Result<&'a [u8], Rfc5424Error> {
    input.strip_prefix(b" ").ok_or_else(|| cur.err(input, kind))
}

/// How many printable US-ASCII bytes `input` starts with: eight at a time while eight are left
/// (a byte loop was a tenth of a short message's parse), then byte by byte.
fn printable_len(input: &[u8]) -> usize {
    let mut n = 0;
    while let Some(word) = swar::load(&input[n..]) {
        let run = swar::first_unprintable(word);
        if run < 8 {
            return n + run;
        }
        n += 8;
    }
    input[n..]
        .iter()
        .position(|&c| !is_print_usascii(c))
        .map_or(input.len(), |run| n + run)
}

/// A header field: NILVALUE or 1..=max printable US-ASCII characters, then a space. Inlined:
/// called four times a message, its entry and exit alone cost 64 instructions (callgrind).
#[inline(always)]
fn header_field<'a>(
    cur: &Cursor<'a>,
    input: &'a [u8],
    max: usize,
    kind: Rfc5424ErrorKind,
) -> Res<'a, Option<&'a str>> {
    let len = printable_len(input);
    if len == 0 || len > max {
        return Err(cur.err(input, kind));
    }
    let (token, rest) = input.split_at(len);
    let rest = space(cur, rest, kind)?;
    let text = cur.str_of(token).ok_or_else(|| cur.err(input, kind))?;
    Ok((rest, (text != "-").then_some(text)))
}

fn version<'a>(cur: &Cursor<'a>, input: &'a [u8]) -> Res<'a, u16> {
    version_number(input).map_err(|at| cur.err(at, Rfc5424ErrorKind::Version))
}

/// VERSION (one to three digits, not starting with 0) and the space after it; on failure,
/// where the fault is. nom's `digit1` finds the digits: with `take_while_m_n(1, 3, …)` a
/// short message took 51 instructions more (1,530 against 1,479, bench/parse-instructions.sh).
fn version_number(input: &[u8]) -> Result<(&[u8], u16), &[u8]> {
    let r: IResult<&[u8], &[u8]> = digit1(input);
    let (rest, digits) = r.map_err(|_| input)?;
    if digits[0] == b'0' {
        return Err(input);
    }
    // A fourth digit is where VERSION went wrong.
    let (digits, rest) = match digits.len() {
        1..=3 => (digits, rest),
        _ => (&digits[..3], &input[3..]),
    };
    let rest = rest.strip_prefix(b" ").ok_or(rest)?;
    let v = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    Ok((rest, v))
}

/// PRI and VERSION, with which every RFC 5424 message starts. In auto mode they are what
/// tells RFC 5424 from a legacy message, and the parse goes on from them: reading them again
/// was a twentieth of parsing a short message (bench/parse-instructions.sh).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head<'a> {
    pri: Pri,
    version: u16,
    /// What follows VERSION's space.
    rest: &'a [u8],
}

/// How a frame starts: an RFC 5424 head, or the PRI as read for the legacy parser, which
/// takes it from here instead of reading it again (that second read was 45 of a Cisco
/// message's 2,658 instructions, bench/parse-instructions.sh).
pub(crate) enum Start<'a> {
    Rfc5424(Head<'a>),
    Legacy(PriRead<'a>),
}

/// Reads PRI and VERSION once and says which parser goes on from there.
pub(crate) fn start(input: &[u8]) -> Start<'_> {
    let read = parse_pri(input);
    let Ok((rest, pri)) = read else {
        return Start::Legacy(read);
    };
    // A legacy message has a timestamp, a host or a Cisco sequence number here: the shapes
    // of a VERSION turn it away before the VERSION reader builds an error for it.
    if !matches!(
        rest,
        [b'1'..=b'9', b' ', ..]
            | [b'1'..=b'9', b'0'..=b'9', b' ', ..]
            | [b'1'..=b'9', b'0'..=b'9', b'0'..=b'9', b' ', ..]
    ) {
        return Start::Legacy(read);
    }
    match version_number(rest) {
        Ok((rest, version)) => Start::Rfc5424(Head { pri, version, rest }),
        Err(_) => Start::Legacy(read),
    }
}

fn timestamp<'a>(cur: &Cursor<'a>, input: &'a [u8]) -> Res<'a, Option<(DateTime, &'a str)>> {
    let kind = Rfc5424ErrorKind::Timestamp;
    if let Some(rest) = input.strip_prefix(b"- ") {
        return Ok((rest, None));
    }
    let (dt, rest) = parse_rfc3339_strict(input).ok_or_else(|| cur.err(input, kind))?;
    let text = &input[..input.len() - rest.len()];
    let rest = space(cur, rest, kind)?;
    let text = cur.str_of(text).ok_or_else(|| cur.err(input, kind))?;
    Ok((rest, Some((dt, text))))
}

fn sd_name<'a>(cur: &Cursor<'a>, input: &'a [u8], kind: Rfc5424ErrorKind) -> Res<'a, &'a str> {
    let len = input
        .iter()
        .position(|&c| !is_sd_name_char(c))
        .unwrap_or(input.len());
    if len == 0 || len > MAX_SD_NAME {
        return Err(cur.err(input, kind));
    }
    let (name, rest) = input.split_at(len);
    let name = cur.str_of(name).ok_or_else(|| cur.err(input, kind))?;
    Ok((rest, name))
}

/// `"` value `"` where `"`, `\` and `]` must be escaped; returns the escaped text.
fn param_value<'a>(cur: &Cursor<'a>, input: &'a [u8]) -> Res<'a, &'a str> {
    let kind = Rfc5424ErrorKind::SdParam;
    let body = input
        .strip_prefix(b"\"")
        .ok_or_else(|| cur.err(input, kind))?;
    let mut i = 0;
    loop {
        match body.get(i) {
            None => return Err(cur.err(&body[i..], kind)),
            Some(b'\\') => i += if body.get(i + 1).is_some() { 2 } else { 1 },
            Some(b'"') => break,
            Some(b']') => return Err(cur.err(&body[i..], kind)),
            Some(_) => i += 1,
        }
    }
    let value = cur.str_of(&body[..i]).ok_or_else(|| cur.err(body, kind))?;
    Ok((&body[i + 1..], value))
}

fn sd_element<'a>(cur: &Cursor<'a>, input: &'a [u8]) -> Res<'a, SdElement<'a>> {
    let rest = input
        .strip_prefix(b"[")
        .ok_or_else(|| cur.err(input, Rfc5424ErrorKind::StructuredData))?;
    let (mut rest, id) = sd_name(cur, rest, Rfc5424ErrorKind::SdId)?;
    let mut params = Vec::with_capacity(4);
    loop {
        match rest.first() {
            Some(b']') => return Ok((&rest[1..], SdElement { id, params })),
            Some(b' ') => {
                let (r, name) = sd_name(cur, &rest[1..], Rfc5424ErrorKind::SdParam)?;
                let r = r
                    .strip_prefix(b"=")
                    .ok_or_else(|| cur.err(r, Rfc5424ErrorKind::SdParam))?;
                let (r, escaped_value) = param_value(cur, r)?;
                params.push(SdParam {
                    name,
                    escaped_value,
                });
                rest = r;
            }
            _ => return Err(cur.err(rest, Rfc5424ErrorKind::SdParam)),
        }
    }
}

fn structured_data<'a>(
    cur: &Cursor<'a>,
    input: &'a [u8],
    options: Rfc5424Options,
) -> Res<'a, (Vec<SdElement<'a>>, bool)> {
    if let Some(rest) = input.strip_prefix(b"-") {
        return Ok((rest, (Vec::new(), false)));
    }
    if input.first() != Some(&b'[') {
        return Err(cur.err(input, Rfc5424ErrorKind::StructuredData));
    }
    let mut elements: Vec<SdElement<'a>> = Vec::with_capacity(2);
    let mut duplicate = false;
    let mut rest = input;
    while rest.first() == Some(&b'[') {
        let (r, element) = sd_element(cur, rest)?;
        if elements.iter().any(|e| e.id == element.id) {
            if !options.allow_duplicate_sd_ids {
                return Err(cur.err(rest, Rfc5424ErrorKind::SdIdDuplicated));
            }
            duplicate = true;
        }
        elements.push(element);
        rest = r;
    }
    Ok((rest, (elements, duplicate)))
}

/// Whether the input looks like RFC 5424 at all: a PRI followed by a VERSION and a space.
/// Format auto-detection decides by the same test ([`start`]) before committing to the strict
/// parser.
pub fn looks_like_rfc5424(input: &[u8]) -> bool {
    matches!(start(input), Start::Rfc5424(_))
}

/// Parses one whole RFC 5424 message (no framing, no trailing-newline handling).
pub fn parse_rfc5424(
    input: &[u8],
    options: Rfc5424Options,
) -> Result<Rfc5424Message<'_>, Rfc5424Error> {
    parse_from(Cursor::new(input), input, options)
}

/// [`parse_rfc5424`] on `input` that lies within the bytes `checked` covers (the frame before
/// its trailer was trimmed), reusing that UTF-8 check instead of making another.
/// `head`, when given, is the head [`start`] read from `input`.
pub(crate) fn parse_rfc5424_checked<'a>(
    input: &'a [u8],
    checked: Checked<'a>,
    options: Rfc5424Options,
    head: Option<Head<'a>>,
) -> Result<Rfc5424Message<'a>, Rfc5424Error> {
    let cur = match checked.str_of(input) {
        Some(text) => Cursor { start: input, text },
        None => Cursor::new(input),
    };
    match head {
        Some(head) => parse_after_head(cur, head, options),
        None => parse_from(cur, input, options),
    }
}

fn parse_from<'a>(
    cur: Cursor<'a>,
    input: &'a [u8],
    options: Rfc5424Options,
) -> Result<Rfc5424Message<'a>, Rfc5424Error> {
    let (rest, pri) = parse_pri(input).map_err(|_| cur.err(input, Rfc5424ErrorKind::Pri))?;
    let (rest, version) = version(&cur, rest)?;
    parse_after_head(cur, Head { pri, version, rest }, options)
}

/// The message after its PRI and VERSION. Inlined into its two callers: called, its message
/// was copied out of the `Result` (29 instructions a message, bench/parse-instructions.sh).
#[inline(always)]
fn parse_after_head<'a>(
    cur: Cursor<'a>,
    head: Head<'a>,
    options: Rfc5424Options,
) -> Result<Rfc5424Message<'a>, Rfc5424Error> {
    let Head { pri, version, rest } = head;
    let (rest, timestamp) = timestamp(&cur, rest)?;
    let (rest, hostname) = header_field(&cur, rest, MAX_HOSTNAME, Rfc5424ErrorKind::Hostname)?;
    let (rest, app_name) = header_field(&cur, rest, MAX_APP_NAME, Rfc5424ErrorKind::AppName)?;
    let (rest, proc_id) = header_field(&cur, rest, MAX_PROCID, Rfc5424ErrorKind::ProcId)?;
    let (rest, msg_id) = header_field(&cur, rest, MAX_MSGID, Rfc5424ErrorKind::MsgId)?;
    let (rest, (structured_data, has_duplicate_sd_id)) = structured_data(&cur, rest, options)?;
    let msg = match rest.split_first() {
        None => None,
        Some((b' ', body)) => Some(match body.strip_prefix(BOM) {
            Some(text) => {
                if cur.str_of(text).is_none() {
                    return Err(cur.err(body, Rfc5424ErrorKind::MsgNotUtf8));
                }
                Msg {
                    bom: true,
                    bytes: text,
                }
            }
            None => Msg {
                bom: false,
                bytes: body,
            },
        }),
        Some(_) => return Err(cur.err(rest, Rfc5424ErrorKind::AfterStructuredData)),
    };
    Ok(Rfc5424Message {
        pri,
        version,
        timestamp,
        hostname,
        app_name,
        proc_id,
        msg_id,
        structured_data,
        msg,
        has_duplicate_sd_id,
    })
}

/// Where STRUCTURED-DATA sits in a well-formed RFC 5424 message, as byte offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdSpan {
    /// STRUCTURED-DATA as a whole, `start..end` (`-` is one byte).
    pub start: usize,
    pub end: usize,
    /// The first element whose SD-ID is the one asked for, if any.
    pub element: Option<(usize, usize)>,
}

/// Finds STRUCTURED-DATA, and the element with SD-ID `id`, in a well-formed RFC 5424 message,
/// with the same grammar as the parser. A relay adding its own element inserts it there (or
/// replaces its earlier copy) and leaves every other byte as it came.
pub fn structured_data_span(input: &[u8], id: &str) -> Option<SdSpan> {
    let cur = Cursor::new(input);
    let (rest, _) = parse_pri(input).ok()?;
    let (rest, _) = version(&cur, rest).ok()?;
    let (rest, _) = timestamp(&cur, rest).ok()?;
    let (rest, _) = header_field(&cur, rest, MAX_HOSTNAME, Rfc5424ErrorKind::Hostname).ok()?;
    let (rest, _) = header_field(&cur, rest, MAX_APP_NAME, Rfc5424ErrorKind::AppName).ok()?;
    let (rest, _) = header_field(&cur, rest, MAX_PROCID, Rfc5424ErrorKind::ProcId).ok()?;
    let (mut rest, _) = header_field(&cur, rest, MAX_MSGID, Rfc5424ErrorKind::MsgId).ok()?;
    let offset = |r: &[u8]| input.len() - r.len();
    let start = offset(rest);
    let mut element = None;
    if let Some(r) = rest.strip_prefix(b"-") {
        rest = r;
    } else {
        if rest.first() != Some(&b'[') {
            return None;
        }
        while rest.first() == Some(&b'[') {
            let (r, e) = sd_element(&cur, rest).ok()?;
            if e.id == id && element.is_none() {
                element = Some((offset(rest), offset(r)));
            }
            rest = r;
        }
    }
    Some(SdSpan {
        start,
        end: offset(rest),
        element,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_data_span_finds_nil_and_elements() {
        let nil = b"<13>1 2003-10-11T22:14:15.003Z host app - - - hi";
        let span = structured_data_span(nil, "y@1").unwrap();
        assert_eq!(&nil[span.start..span.end], b"-");
        assert_eq!(span.element, None);
        let sd = br#"<13>1 - h a p m [x@1 a="\]"][y@1] msg ] x"#;
        let span = structured_data_span(sd, "y@1").unwrap();
        assert_eq!(&sd[span.start..span.end], br#"[x@1 a="\]"][y@1]"#);
        let (from, to) = span.element.unwrap();
        assert_eq!(&sd[from..to], b"[y@1]");
        assert_eq!(structured_data_span(b"<13>Oct 11 host: x", "y@1"), None);
    }

    const STRICT: Rfc5424Options = Rfc5424Options {
        allow_duplicate_sd_ids: false,
    };

    #[test]
    fn rfc_example_with_structured_data_parses() {
        let input = br#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] An application event"#;
        let m = parse_rfc5424(input, STRICT).unwrap();
        assert_eq!(m.pri.value(), 165);
        assert_eq!(m.hostname, Some("mymachine.example.com"));
        assert_eq!(m.proc_id, None);
        assert_eq!(m.structured_data.len(), 2);
        assert_eq!(m.structured_data[0].params[1].value(), "Application");
        assert_eq!(m.msg.unwrap().bytes, b"An application event");
    }

    #[test]
    fn escapes_are_undone_and_unknown_backslashes_kept() {
        let input = br#"<1>1 - - - - - [a k="q\"b\\s\]x\n"]"#;
        let m = parse_rfc5424(input, STRICT).unwrap();
        assert_eq!(m.structured_data[0].params[0].value(), "q\"b\\s]x\\n");
    }

    #[test]
    fn unescaped_bracket_in_value_is_rejected() {
        let e = parse_rfc5424(br#"<1>1 - - - - - [a k="x]"]"#, STRICT).unwrap_err();
        assert_eq!(e.kind, Rfc5424ErrorKind::SdParam);
    }

    #[test]
    fn duplicate_sd_ids_are_rejected_unless_allowed_and_then_kept_in_order() {
        let input = br#"<1>1 - - - - - [a x="1"][b][a x="2"] m"#;
        assert_eq!(
            parse_rfc5424(input, STRICT).unwrap_err().kind,
            Rfc5424ErrorKind::SdIdDuplicated
        );
        let m = parse_rfc5424(
            input,
            Rfc5424Options {
                allow_duplicate_sd_ids: true,
            },
        )
        .unwrap();
        let ids: Vec<_> = m.structured_data.iter().map(|e| e.id).collect();
        assert_eq!(ids, ["a", "b", "a"]);
        assert!(m.has_duplicate_sd_id);
    }

    #[test]
    fn bom_is_split_off_and_requires_utf8() {
        let m = parse_rfc5424(b"<1>1 - - - - - - \xEF\xBB\xBFhello", STRICT).unwrap();
        assert_eq!(
            m.msg,
            Some(Msg {
                bom: true,
                bytes: b"hello"
            })
        );
        let e = parse_rfc5424(b"<1>1 - - - - - - \xEF\xBB\xBF\xff", STRICT).unwrap_err();
        assert_eq!(e.kind, Rfc5424ErrorKind::MsgNotUtf8);
        assert!(parse_rfc5424(b"<1>1 - - - - - - \xff", STRICT).is_ok());
    }

    #[test]
    fn errors_name_the_field_and_offset() {
        let e = parse_rfc5424(b"<1>1 2003-13-01T00:00:00Z - - - - -", STRICT).unwrap_err();
        assert_eq!((e.kind, e.offset), (Rfc5424ErrorKind::Timestamp, 5));
        let long_app = format!("<1>1 - - {} - - -", "a".repeat(49));
        let e = parse_rfc5424(long_app.as_bytes(), STRICT).unwrap_err();
        assert_eq!(e.kind, Rfc5424ErrorKind::AppName);
    }

    /// VERSION as `take_while_m_n(1, 3, …)` read it before `digit1` did.
    fn reference_version(input: &[u8]) -> Result<(&[u8], u16), &[u8]> {
        let n = input
            .iter()
            .take(3)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if n == 0 || input[0] == b'0' {
            return Err(input);
        }
        let rest = input[n..].strip_prefix(b" ").ok_or(&input[n..])?;
        let v = input[..n]
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
        Ok((rest, v))
    }

    proptest::proptest! {
        #[test]
        fn version_reads_as_before_with_its_fault_at_the_same_place(
            input in crate::oracle::bytes_of(b"0159 x-", 8)
        ) {
            proptest::prop_assert_eq!(version_number(&input), reference_version(&input));
        }
    }
}
