//! Names the device family (or payload format) a legacy message came from, and reads the parts
//! of it that family puts in a shape of its own.

use super::{cisco, vendors, Rfc3164Message, Rfc3164Options};
use crate::payload::{key_values_in, parse_cef, parse_leef, Checked};

/// A recognised RFC 3164 dialect or payload format; `name()` is the record's `dialect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// `tag[pid]: message` as Linux and BSD daemons write it.
    Linux,
    /// Cisco IOS / IOS-XE: sequence numbers, `*`/`.` clock marks, `%FAC-SEV-MNEMONIC`.
    CiscoIos,
    /// Cisco ASA / FTD: `%ASA-6-302013:`.
    CiscoAsa,
    /// Cisco NX-OS: year-first timestamps, `%FAC-SEV-MNEMONIC`.
    CiscoNxos,
    /// Junos: `process[pid]: EVENT_ID: message`.
    Juniper,
    /// FortiGate: a `key=value` body with no syslog header.
    Fortigate,
    /// Palo Alto PAN-OS CSV.
    PaloAlto,
    /// MikroTik RouterOS: topic lists instead of a TAG.
    Mikrotik,
    /// ArcSight CEF payload.
    Cef,
    /// IBM LEEF payload.
    Leef,
    /// Generic `key=value` payload.
    KeyValue,
}

impl Dialect {
    /// The name used in the record's `dialect` field and in metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::Linux => "linux",
            Self::CiscoIos => "cisco-ios",
            Self::CiscoAsa => "cisco-asa",
            Self::CiscoNxos => "cisco-nxos",
            Self::Juniper => "juniper",
            Self::Fortigate => "fortigate",
            Self::PaloAlto => "paloalto",
            Self::Mikrotik => "mikrotik",
            Self::Cef => "cef",
            Self::Leef => "leef",
            Self::KeyValue => "kv",
        }
    }

    /// Every dialect, for registering metrics up front.
    pub const ALL: [Dialect; 11] = [
        Self::Linux,
        Self::CiscoIos,
        Self::CiscoAsa,
        Self::CiscoNxos,
        Self::Juniper,
        Self::Fortigate,
        Self::PaloAlto,
        Self::Mikrotik,
        Self::Cef,
        Self::Leef,
        Self::KeyValue,
    ];
}

/// Decides the dialect of a message whose header has been read, and reads the fields that
/// dialect carries: a Cisco mnemonic is marked in `header`, payload pairs go into `fields`.
pub(super) fn classify<'a>(
    m: &mut Rfc3164Message<'a>,
    checked: Checked<'a>,
    year_first: bool,
    options: Rfc3164Options,
) {
    if m.dialect.is_some() {
        return;
    }
    if let Some((facility, _, _)) = m.app_name.and_then(cisco::mnemonic) {
        m.dialect = Some(if facility == b"ASA" || facility == b"FTD" {
            Dialect::CiscoAsa
        } else if year_first {
            Dialect::CiscoNxos
        } else {
            Dialect::CiscoIos
        });
        m.header.mnemonic = true;
        return;
    }
    if let Some(fields) = parse_cef(m.msg) {
        m.dialect = Some(Dialect::Cef);
        m.fields.extend(fields);
    } else if let Some(fields) = parse_leef(m.msg) {
        m.dialect = Some(Dialect::Leef);
        m.fields.extend(fields);
    } else if let Some(fields) = vendors::paloalto(m.msg) {
        m.dialect = Some(Dialect::PaloAlto);
        m.fields.extend(fields);
    } else if let Some(id) = m.app_name.and_then(|_| vendors::junos_event_id(m.msg)) {
        m.dialect = Some(Dialect::Juniper);
        m.fields.push(("event_id".into(), checked.text(id)));
    } else if m.header.sequence.is_some() {
        m.dialect = Some(Dialect::CiscoIos);
    } else if m.app_name.is_some() {
        m.dialect = Some(Dialect::Linux);
        if options.key_values {
            m.fields.extend(key_values_in(checked, m.msg));
        }
    } else if options.key_values {
        let fields = key_values_in(checked, m.msg);
        if !fields.is_empty() {
            m.dialect = Some(Dialect::KeyValue);
            m.fields.extend(fields);
        }
    }
}
