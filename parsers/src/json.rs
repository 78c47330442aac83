//! A small JSON writer for the record: objects, arrays, strings, numbers, booleans.
//!
//! The record is written once per message on the relay's hot path, and its two long strings
//! (`message` and `raw`) are almost always free of anything to escape. Profiling showed serde's
//! byte-at-a-time escaping as the largest single cost of writing a record, so strings here are
//! scanned 32 and 8 bytes at a time and copied in runs. The output is byte for byte what
//! `serde_json` writes for the same values (tested), so stored records and their digests do not
//! depend on which writer made them.

/// Appends `s` as a JSON string, quotes included.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    write_str_content(out, s);
    out.push(b'"');
}

/// Appends `s` escaped as inside a JSON string, without the quotes. Escaping is byte by byte
/// (no byte's escape depends on its neighbours), so pieces written apart join up into exactly
/// the escape of the whole.
pub fn write_str_content(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Copied in runs between the bytes that need an escape, each found a word at a time.
    let mut start = 0;
    while let Some(at) = next_escape(bytes, start) {
        out.extend_from_slice(&bytes[start..at]);
        let c = bytes[at];
        write_escape(out, c, ESCAPES[usize::from(c)]);
        start = at + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// The first byte at or after `from` that needs an escape. Clean text goes 32 bytes per step,
/// then 8; a word that holds an escape gives its position at once, with no byte loop (text
/// with many quotes, such as FortiGate's, was dominated by one).
fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let mut i = from;
    while i + 32 <= bytes.len()
        && escapes(word(i)) | escapes(word(i + 8)) | escapes(word(i + 16)) | escapes(word(i + 24))
            == 0
    {
        i += 32;
    }
    while i + 8 <= bytes.len() {
        if let Some(at) = first_flagged(i, escapes(word(i))) {
            return Some(at);
        }
        i += 8;
    }
    if i == bytes.len() {
        return None;
    }
    if bytes.len() >= from + 8 {
        // The last word overlaps bytes this call found clean, so its first flagged byte is the
        // first that needs an escape (see `escapes`), at or after `i`.
        let last = bytes.len() - 8;
        return first_flagged(last, escapes(word(last)));
    }
    // Otherwise the remainder (under 8 bytes) is tested as one word, padded with spaces (which
    // need no escape). Not the last 8 bytes of `bytes`: they may hold the escape just written,
    // whose borrow can flag the byte after it.
    let mut w = [b' '; 8];
    w[..bytes.len() - i].copy_from_slice(&bytes[i..]);
    first_flagged(i, escapes(u64::from_le_bytes(w)))
}

/// The position of the first byte [`escapes`] flagged in the word read at `at`, if any.
fn first_flagged(at: usize, mask: u64) -> Option<usize> {
    (mask != 0).then(|| at + (mask.trailing_zeros() / 8) as usize)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Non-zero when any byte of `word` is a control character, `"` or `\`. Each test is the
/// classic "has a byte less than n" bit trick: exact as a yes/no for the whole word, and its
/// lowest flagged byte is always a true one (a borrow only carries upwards, from a byte that
/// matched into the bytes above it), so the lowest set bit is the first byte to escape.
fn escapes(word: u64) -> u64 {
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    control | has_zero(word ^ (ONES * u64::from(b'"'))) | has_zero(word ^ (ONES * u64::from(b'\\')))
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

/// A member name of our own, kept as the bytes written before its value: `,"name":`. One copy
/// then writes a whole key; writing the comma, quotes, name and colon apart was a twentieth of
/// the relay's CPU (perf). Made by [`key!`], which checks the name when compiling.
#[derive(Debug, Clone, Copy)]
pub struct Key(&'static str);

impl Key {
    /// `text` must be `,"name":` with a name that needs no escaping; checked, so that calling
    /// this in a const context (as [`key!`] does) turns a bad name into a compile error.
    #[doc(hidden)]
    pub const fn quoted(text: &'static str) -> Key {
        let b = text.as_bytes();
        let n = b.len();
        assert!(n >= 4 && b[0] == b',' && b[1] == b'"' && b[n - 2] == b'"' && b[n - 1] == b':');
        let mut i = 2;
        while i < n - 2 {
            assert!(ESCAPES[b[i] as usize] == 0, "a key must need no escaping");
            i += 1;
        }
        Key(text)
    }
}

/// A [`Key`] for a literal name: `key!("seq")`.
macro_rules! key {
    ($name:literal) => {
        const { $crate::json::Key::quoted(concat!(",\"", $name, "\":")) }
    };
}
pub(crate) use key;

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
    /// them, and the first member's copy leaves out the comma.
    pub fn key(&mut self, key: Key) -> &mut Vec<u8> {
        let text = key.0.as_bytes();
        self.out.extend_from_slice(&text[usize::from(self.empty)..]);
        self.empty = false;
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
        out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
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
