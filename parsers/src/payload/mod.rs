//! Payload parsers: structured formats carried inside the MSG part, read into `fields`.

mod cef;
mod kv;
mod leef;

use std::borrow::Cow;

pub use cef::parse_cef;
pub(crate) use kv::key_values_in;
pub use kv::parse_key_values;
pub use leef::parse_leef;

/// Key/value pairs in the order they appear; duplicates kept.
pub type Fields<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// Text of a byte slice, borrowed when it is UTF-8, otherwise with U+FFFD replacements (the
/// exact bytes always survive in the record's `raw`).
pub(crate) fn text(bytes: &[u8]) -> Cow<'_, str> {
    // `from_utf8` is the vectorised check; the lossy decoder's chunk iterator is several times
    // slower and only needed for the rare invalid input.
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// A byte string checked as UTF-8 once, so that its pieces borrow as `str` with a boundary
/// check instead of another validation each (profiled: per-piece checks cost more than the
/// scans that found the pieces).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checked<'a> {
    bytes: &'a [u8],
    text: Option<&'a str>,
}

impl<'a> Checked<'a> {
    /// Checked with `simdutf8`, which reads 32 bytes a step where it can: `std`'s check was
    /// 166 of a short RFC 5424 message's 1,603 instructions, simdutf8's is about 110
    /// (bench/parse-instructions.sh).
    pub(crate) fn new(bytes: &'a [u8]) -> Checked<'a> {
        Checked {
            bytes,
            text: simdutf8::basic::from_utf8(bytes).ok(),
        }
    }

    /// Text that is already a `str`, with nothing to check.
    pub(crate) fn of_str(text: &'a str) -> Checked<'a> {
        Checked {
            bytes: text.as_bytes(),
            text: Some(text),
        }
    }

    /// All of the checked bytes as text, when they are UTF-8.
    pub(crate) fn whole(&self) -> Option<&'a str> {
        self.text
    }

    /// `piece` as text borrowed from the checked bytes, when it lies within them and they are
    /// UTF-8 (and it does not cut a character).
    pub(crate) fn str_of(&self, piece: &'a [u8]) -> Option<&'a str> {
        let whole = self.text?;
        let offset = offset_within(self.bytes, piece)?;
        whole.get(offset..offset + piece.len())
    }

    /// The text of `piece`, which should lie within the checked bytes; anything else (or a
    /// piece of invalid input) goes through [`text`].
    pub(crate) fn text(&self, piece: &'a [u8]) -> Cow<'a, str> {
        match self.str_of(piece) {
            Some(s) => Cow::Borrowed(s),
            None => text(piece),
        }
    }
}

/// Where `piece` starts within `outer`, when it is a piece of it (the same memory, not equal
/// bytes elsewhere).
pub(crate) fn offset_within(outer: &[u8], piece: &[u8]) -> Option<usize> {
    // Wrapping: a piece before `outer` gives an offset no length can follow.
    let offset = (piece.as_ptr() as usize).wrapping_sub(outer.as_ptr() as usize);
    offset
        .checked_add(piece.len())
        .filter(|end| *end <= outer.len())
        .map(|_| offset)
}

/// Splits `input` at unescaped `sep` bytes (an escape is a backslash before any byte).
pub(crate) fn split_unescaped(input: &[u8], sep: u8, max_parts: usize) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < input.len() && parts.len() + 1 < max_parts {
        match input[i] {
            b'\\' => i += 2,
            c if c == sep => {
                parts.push(&input[start..i]);
                start = i + 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    parts.push(&input[start.min(input.len())..]);
    parts
}

/// Undoes backslash escapes: `\n` and `\r` become line breaks, `\x` becomes `x`.
pub(crate) fn unescape(bytes: &[u8]) -> Cow<'_, str> {
    if !bytes.contains(&b'\\') {
        return text(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            out.push(match bytes[i + 1] {
                b'n' => b'\n',
                b'r' => b'\r',
                other => other,
            });
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}
