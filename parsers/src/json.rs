//! A small JSON writer for the record: objects, arrays, strings, numbers, booleans.
//!
//! The record is written once per message on the relay's hot path, and its two long strings
//! (`message` and `raw`) are almost always free of anything to escape. Profiling showed serde's
//! byte-at-a-time escaping as the largest single cost of writing a record, so strings here are
//! scanned 32 and 8 bytes at a time and copied in runs. The output is byte for byte what
//! `serde_json` writes for the same values (tested), so stored records and their digests do not
//! depend on which writer made them.

use crate::swar::{below, HIGH, ONES};

/// Appends `s` as a JSON string, quotes included.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    // Most strings of a record are short (names, hosts, the keys and values of `fields`):
    // quotes and text are put together on the stack and copied out at once, without a call.
    let bytes = s.as_bytes();
    if bytes.len() <= SHORT {
        let mut text = [b' '; SHORT + 2];
        copy_short(&mut text[1..], bytes);
        let (words, _) = text.as_chunks::<8>();
        if words
            .iter()
            .fold(0, |flags, w| flags | exact_escapes(u64::from_le_bytes(*w)))
            == 0
        {
            text[0] = b'"';
            text[bytes.len() + 1] = b'"';
            out.extend_from_slice(&text);
            out.truncate(out.len() - (SHORT - bytes.len()));
            return;
        }
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    write_str_content(out, s);
    out.push(b'"');
}

/// Appends `s` escaped as inside a JSON string, without the quotes. Escaping is byte by byte
/// (no byte's escape depends on its neighbours), so pieces written apart join up into exactly
/// the escape of the whole.
///
/// Clean text is copied in 32-byte blocks; a block that holds an escape goes a word at a time,
/// each word copied whole and cut back to the escape. Every copy has a fixed size, so none is
/// a call to `memcpy`: copying each run between escapes with one was a fifth of writing a
/// FortiGate record, whose quoted values put an escape every dozen bytes (callgrind).
pub fn write_str_content(out: &mut Vec<u8>, s: &str) {
    let mut rest = s.as_bytes();
    loop {
        while let Some(block) = rest.first_chunk::<32>() {
            if block_escapes(block) {
                break;
            }
            out.extend_from_slice(block);
            rest = &rest[32..];
        }
        // The block that held an escape (or the last bytes), a word at a time; then back to
        // blocks, so one escape does not slow the rest of a long string.
        let back_at = rest.len().saturating_sub(32);
        while rest.len() > back_at {
            let Some(chunk) = rest.first_chunk::<8>() else {
                return write_tail(out, s.as_bytes(), rest);
            };
            out.extend_from_slice(chunk);
            let flags = escapes(u64::from_le_bytes(*chunk));
            if flags == 0 {
                rest = &rest[8..];
                continue;
            }
            // Only the lowest flag is certain (see `escapes`): escape that byte and read on
            // from the next.
            let at = (flags.trailing_zeros() / 8) as usize;
            out.truncate(out.len() - (8 - at));
            let c = chunk[at];
            write_escape(out, c, ESCAPES[usize::from(c)]);
            rest = &rest[at + 1..];
        }
        if rest.is_empty() {
            return;
        }
    }
}

/// Writes `tail`, the last bytes (under eight) of `whole`. When `whole` ends in eight bytes
/// that need no escape, the bytes before `tail` were copied as they are, so the output is
/// cut back to them and the last word is copied whole; otherwise byte by byte.
fn write_tail(out: &mut Vec<u8>, whole: &[u8], tail: &[u8]) {
    if let Some(last) = whole.last_chunk::<8>() {
        // Exact per byte: the word may hold escapes written just before `tail`.
        if exact_escapes(u64::from_le_bytes(*last)) == 0 {
            out.truncate(out.len() - (8 - tail.len()));
            out.extend_from_slice(last);
            return;
        }
    }
    // Short text (most keys and values of `fields`) goes as one word padded with spaces,
    // which need no escape: one fixed-size copy instead of a push per byte.
    let padded = padded_word(tail);
    if exact_escapes(u64::from_le_bytes(padded)) == 0 {
        out.extend_from_slice(&padded);
        out.truncate(out.len() - (8 - tail.len()));
        return;
    }
    for &c in tail {
        match ESCAPES[usize::from(c)] {
            0 => out.push(c),
            escape => write_escape(out, c, escape),
        }
    }
}

/// The longest string [`write_str`] writes from the stack: with its quotes, two words.
const SHORT: usize = 14;

/// Copies `bytes` (under sixteen) to the start of `to` in pieces of eight, four, two and one
/// bytes as its length's binary digits say: fixed-size copies, where a byte loop cost eight
/// instructions a byte and a copy of unknown length is a call.
fn copy_short(to: &mut [u8], bytes: &[u8]) {
    debug_assert!(bytes.len() < 16);
    let mut at = 0;
    for size in [8, 4, 2, 1] {
        if bytes.len() & size != 0 {
            to[at..at + size].copy_from_slice(&bytes[at..at + size]);
            at += size;
        }
    }
}

/// `bytes` (under eight) padded with spaces to a word.
fn padded_word(bytes: &[u8]) -> [u8; 8] {
    let mut word = [b' '; 8];
    copy_short(&mut word, bytes);
    word
}

/// Whether any of a block's 32 bytes needs an escape.
fn block_escapes(block: &[u8; 32]) -> bool {
    let (words, _) = block.as_chunks::<8>();
    words
        .iter()
        .fold(0, |flags, w| flags | escapes(u64::from_le_bytes(*w)))
        != 0
}

/// Non-zero when any byte of `word` is a control character, `"` or `\`. Each test is
/// [`below`]: exact as a yes/no for the whole word, and its lowest flagged byte is always a
/// true one, so the lowest set bit is the first byte to escape.
fn escapes(word: u64) -> u64 {
    let zero = |v: u64| below(v, 1);
    below(word, 0x20)
        | zero(word ^ (ONES * u64::from(b'"')))
        | zero(word ^ (ONES * u64::from(b'\\')))
}

/// The high bit of each byte of `word` that is a control character, `"` or `\`, and of no
/// other: unlike [`escapes`], no byte's test borrows from its neighbour's (each adds within
/// its low seven bits, which cannot carry out of the byte).
fn exact_escapes(word: u64) -> u64 {
    const LOW: u64 = !HIGH;
    let zero = |v: u64| !(((v & LOW) + LOW) | v) & HIGH;
    let control = !(((word & LOW) + ONES * (0x80 - 0x20)) | word) & HIGH;
    control | zero(word ^ (ONES * u64::from(b'"'))) | zero(word ^ (ONES * u64::from(b'\\')))
}

/// How `serde_json` escapes each byte: a short escape letter, `u` for `\u00XX`, or 0 for
/// none. A table: one load for each byte that needs an escape.
const ESCAPES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut c = 0;
    while c < 0x20 {
        table[c] = b'u';
        c += 1;
    }
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table
};

fn write_escape(out: &mut Vec<u8>, c: u8, escape: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if escape == b'u' {
        out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(c >> 4)],
            HEX[usize::from(c & 0xf)],
        ]);
    } else {
        out.extend_from_slice(&[b'\\', escape]);
    }
}

/// Writes `items` as a JSON array, each with `write`.
pub fn write_array<T>(out: &mut Vec<u8>, items: &[T], mut write: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

/// The longest `,"name":` a [`Key`] holds.
const KEY_MAX: usize = 32;

/// A member name of our own, kept as the bytes written before its value: `,"name":`, padded
/// to a fixed size. One fixed-size copy then writes a whole key, with no call to `memcpy`;
/// writing the comma, quotes, name and colon apart was a twentieth of the relay's CPU (perf),
/// and copying the key by its length was a call per key. Made by [`key!`], which checks the
/// name when compiling.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    text: [u8; KEY_MAX],
    len: u8,
}

impl Key {
    /// `text` must be `,"name":` with a name that needs no escaping, at most [`KEY_MAX`]
    /// bytes in all; checked, so that calling this in a const context (as [`key!`] does)
    /// turns a bad name into a compile error.
    #[doc(hidden)]
    pub const fn quoted(text: &'static str) -> Key {
        let b = text.as_bytes();
        let n = b.len();
        assert!(n >= 4 && b[0] == b',' && b[1] == b'"' && b[n - 2] == b'"' && b[n - 1] == b':');
        assert!(n <= KEY_MAX, "a key must be at most 28 bytes");
        let mut padded = [0u8; KEY_MAX];
        let mut i = 0;
        while i < n {
            assert!(
                i < 2 || i >= n - 2 || ESCAPES[b[i] as usize] == 0,
                "a key must need no escaping"
            );
            padded[i] = b[i];
            i += 1;
        }
        Key {
            text: padded,
            len: n as u8,
        }
    }
}

/// A [`Key`] for a literal name: `key!("seq")`.
macro_rules! key {
    ($name:literal) => {
        const { $crate::json::Key::quoted(concat!(",\"", $name, "\":")) }
    };
}
pub(crate) use key;

/// The two decimal digits of `v` modulo 100, from a table of all hundred pairs: one load,
/// where two divisions by ten were most of the work of writing a small number.
pub(crate) fn digit_pair(v: u8) -> [u8; 2] {
    let at = usize::from(v % 100) * 2;
    [DIGIT_PAIRS[at], DIGIT_PAIRS[at + 1]]
}

/// `00`, `01`, … `99`.
const DIGIT_PAIRS: [u8; 200] = {
    let mut table = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        table[2 * i] = b'0' + (i / 10) as u8;
        table[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    table
};

/// Writes one JSON object's members, placing the commas.
pub struct Object<'o> {
    out: &'o mut Vec<u8>,
    empty: bool,
}

impl<'o> Object<'o> {
    pub fn begin(out: &'o mut Vec<u8>) -> Object<'o> {
        out.push(b'{');
        Object { out, empty: true }
    }

    /// Starts a member named by one of our own keys and returns the buffer to write its value
    /// into. Keys are most of the strings in a record, and short: copying them beats scanning
    /// them. The padded key is copied whole and cut back to its length; the first member's
    /// key goes over the object's `{`, its comma then turned back into the `{`.
    pub fn key(&mut self, key: Key) -> &mut Vec<u8> {
        let start = self.out.len() - usize::from(self.empty);
        self.out.truncate(start);
        self.out.extend_from_slice(&key.text);
        self.out.truncate(start + usize::from(key.len));
        if self.empty {
            self.out[start] = b'{';
            self.empty = false;
        }
        self.out
    }

    pub fn str(&mut self, key: Key, value: &str) {
        let out = self.key(key);
        write_str(out, value);
    }

    /// A member whose key comes from the input (escaped like any string).
    pub fn str_any_key(&mut self, key: &str, value: &str) {
        self.comma();
        write_str(self.out, key);
        self.out.push(b':');
        write_str(self.out, value);
    }

    fn comma(&mut self) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
    }

    pub fn u64(&mut self, key: Key, value: u64) {
        let out = self.key(key);
        match value {
            // PRI, facility, severity and version: one or two digits of a small table, no
            // formatter and no copy of unknown length.
            0..=9 => out.push(b'0' + value as u8),
            10..=99 => out.extend_from_slice(&digit_pair(value as u8)),
            _ => out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes()),
        }
    }

    pub fn bool(&mut self, key: Key, value: bool) {
        let out = self.key(key);
        out.extend_from_slice(if value { b"true" } else { b"false" });
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_does() {
        let mut cases: Vec<String> = vec![
            String::new(),
            "plain text that is longer than one word of eight bytes".into(),
            "quote \" backslash \\ newline \n tab \t cr \r bs \u{8} ff \u{c} nul \0 us \u{1f}"
                .into(),
            "ünïcødé ✓ and \u{7f} DEL and 🎉 at the end\"".into(),
        ];
        // Every byte below 0x80 at every offset of the 32- and 8-byte steps and the tail.
        for c in 0u8..0x80 {
            for at in 0..=44 {
                let mut s = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH".to_string();
                s.insert(at, c as char);
                cases.push(s);
            }
        }
        // Short strings and tails: each length up to two words, every byte at every offset.
        for len in 0..=16 {
            for c in 0u8..0x80 {
                for at in 0..=len {
                    let mut s = "abcdefghijklmnop"[..len].to_string();
                    s.insert(at, c as char);
                    cases.push(s);
                }
            }
        }
        // Two escapes at every pair of offsets: the scan resumes after each escape, and a
        // borrow from the first must not be taken for a second (nor hide one).
        for (a, b) in [
            (b'"', b'"'),
            (b'\\', b'a'),
            (b'\n', b'"'),
            (0u8, 0x1f),
            (b'"', 0x7f),
        ] {
            for len in 0..=20 {
                for i in 0..=len {
                    for j in i..=len {
                        let mut s = "abcdefghijklmnopqrst"[..len].to_string();
                        s.insert(j, b as char);
                        s.insert(i, a as char);
                        cases.push(s);
                    }
                }
            }
        }
        for s in cases {
            assert_eq!(ours(&s), serde_json::to_string(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    #[should_panic(expected = "a key must need no escaping")]
    fn a_key_that_needs_escaping_is_refused() {
        // `key!` makes this check at compile time; called at run time it panics instead.
        let quoted = String::from(",\"a\"b\":").leak();
        Key::quoted(quoted);
    }

    #[test]
    #[should_panic(expected = "a key must be at most 28 bytes")]
    fn a_key_longer_than_its_room_is_refused() {
        Key::quoted(",\"abcdefghijklmnopqrstuvwxyz012\":");
    }

    #[test]
    fn objects_inside_objects_and_the_longest_key() {
        let mut out = Vec::new();
        let mut o = Object::begin(&mut out);
        let mut inner = Object::begin(o.key(key!("a")));
        inner.u64(key!("abcdefghijklmnopqrstuvwxyz01"), 1);
        inner.end();
        Object::begin(o.key(key!("b"))).end();
        o.bool(key!("c"), false);
        o.end();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":{"abcdefghijklmnopqrstuvwxyz01":1},"b":{},"c":false}"#
        );
    }

    #[test]
    fn numbers_are_written_as_decimal() {
        for n in (0..=1000).chain([9_999, 65_535, u64::MAX]) {
            let mut out = Vec::new();
            let mut o = Object::begin(&mut out);
            o.u64(key!("n"), n);
            o.end();
            assert_eq!(String::from_utf8(out).unwrap(), format!("{{\"n\":{n}}}"));
        }
    }

    #[test]
    fn objects_place_commas_and_numbers() {
        let mut out = Vec::new();
        let mut o = Object::begin(&mut out);
        o.u64(key!("a"), 0);
        o.str(key!("b"), "x");
        o.bool(key!("c"), true);
        o.u64(key!("d"), u64::MAX);
        o.str_any_key("e\"", "f");
        o.end();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":0,"b":"x","c":true,"d":18446744073709551615,"e\"":"f"}"#
        );
    }
}
