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
