//! The fields a legacy header carries in fixed places: Cisco's device timestamp, clock mark,
//! sequence number and `%FAC-SEV-MNEMONIC`, and MikroTik's topics.
//!
//! They are kept as a few words beside the message's other parts, not as pairs in `fields`:
//! those pairs were a Cisco message's only allocation, and with it they were about 500 of a
//! Cisco IOS message's 2,172 instructions (bench/README.md). They become pairs when the
//! record is written, first in its `fields` object and in the order the pairs had.

use super::{cisco, ClockMark};
use crate::payload::{text, Checked};

/// Where a legacy message's header fields are. The facility, severity, mnemonic and topics
/// are pieces of the TAG, so only whether it holds them is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderFields<'a> {
    /// A device's own timestamp, when a relay's header came before it.
    pub device_timestamp: Option<&'a [u8]>,
    /// Cisco's message sequence number, as written (`000123`).
    pub sequence: Option<&'a [u8]>,
    /// How Cisco marked the clock (`*` or `.` before the timestamp).
    pub clock: Option<ClockMark>,
    /// The TAG is `%FAC-SEV-MNEMONIC`: `facility`, `severity` and `mnemonic`.
    pub mnemonic: bool,
    /// The TAG is MikroTik's topic list: `topics`.
    pub topics: bool,
}

impl<'a> HeaderFields<'a> {
    /// Whether the header carried none of these fields (every dialect but Cisco's and
    /// MikroTik's), so that writing a record can skip them with one test.
    pub fn is_empty(&self) -> bool {
        *self == HeaderFields::default()
    }

    /// Calls `f` with each field's key and value, in order; `tag` is the message's TAG as
    /// text. A callback rather than a list, so that writing them builds nothing.
    #[inline]
    pub fn for_each(&self, tag: Option<&str>, mut f: impl FnMut(&'static str, &str)) {
        if let Some(raw) = self.device_timestamp {
            f("device_timestamp", &text(raw));
        }
        if let Some(topics) = tag.filter(|_| self.topics) {
            f("topics", topics);
        }
        if let Some(mark) = self.clock {
            f("clock", mark.name());
        }
        if let Some(seq) = self.sequence {
            f("sequence", &text(seq));
        }
        let parts = tag.filter(|_| self.mnemonic).and_then(split_mnemonic);
        if let Some((facility, severity, mnemonic)) = parts {
            f("facility", facility);
            f("severity", severity);
            f("mnemonic", mnemonic);
        }
    }

    /// Whether one of the fields is named `key`. Out of line: it is asked only when a key's
    /// filter bit says it may repeat.
    #[inline(never)]
    pub fn has(&self, tag: Option<&str>, key: &str) -> bool {
        let mut found = false;
        self.for_each(tag, |k, _| found |= k == key);
        found
    }

    /// The fields as `(key, value)` pairs, in order.
    pub fn pairs(&self, tag: Option<&str>) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        self.for_each(tag, |k, v| pairs.push((k, v.to_string())));
        pairs
    }
}

/// `%FAC-SEV-MNEMONIC` as text, split where [`cisco::mnemonic`] splits its bytes. Every cut is
/// at an ASCII byte, so each piece is exactly the text the bytes' piece would have been.
fn split_mnemonic(tag: &str) -> Option<(&str, &str, &str)> {
    let (facility, severity, name) = cisco::mnemonic(tag.as_bytes())?;
    let text = Checked::of_str(tag);
    Some((
        text.str_of(facility)?,
        text.str_of(severity)?,
        text.str_of(name)?,
    ))
}
