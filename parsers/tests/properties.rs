//! Property tests: random RFC 5424 messages survive a write/parse round trip, and no input,
//! however hostile, panics the parsers or the framing.

use auditrelay_parsers::framing::{split_stream, Framing};
use auditrelay_parsers::pri::Pri;
use auditrelay_parsers::rfc5424::{
    escape_param_value, parse_rfc5424, Msg, Rfc5424Message, Rfc5424Options, SdElement, SdParam,
};
use auditrelay_parsers::timestamp::{days_in_month, parse_rfc3339_strict};
use auditrelay_parsers::{parse, FormatChoice, ParseOptions};
use proptest::collection::vec;
use proptest::prelude::*;

/// Owned parts of a message; the borrowed `Rfc5424Message` is built from them.
#[derive(Debug, Clone)]
struct Parts {
    pri: u8,
    version: u16,
    timestamp: Option<String>,
    header: [Option<String>; 4],
    sd: Vec<(String, Vec<(String, String)>)>,
    msg: Option<(bool, Vec<u8>)>,
}

fn printable(max: usize) -> impl Strategy<Value = String> {
    // A lone "-" is NILVALUE, so it cannot be a value.
    proptest::string::string_regex(&format!("[!-~]{{1,{max}}}"))
        .unwrap()
        .prop_filter("not NILVALUE", |s| s != "-")
}

fn sd_name() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[!#-<>-\\\\^-~]{1,32}").unwrap()
}

fn timestamp() -> impl Strategy<Value = String> {
    (
        1970i32..2100,
        1u8..=12,
        1u8..=31,
        0u8..24,
        0u8..60,
        0u8..60,
        0usize..=6,
        0u32..1_000_000,
        -1439i16..=1439,
    )
        .prop_map(|(y, mo, d, h, mi, s, frac, f, off)| {
            let d = d.min(days_in_month(y, mo));
            let mut t = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
            if frac > 0 {
                t.push_str(&format!(".{:06}", f)[..frac + 1]);
            }
            if off == 0 {
                t.push('Z');
            } else {
                let a = off.unsigned_abs();
                t.push_str(&format!(
                    "{}{:02}:{:02}",
                    if off < 0 { '-' } else { '+' },
                    a / 60,
                    a % 60
                ));
            }
            t
        })
}

fn parts() -> impl Strategy<Value = Parts> {
    let header = (
        proptest::option::of(printable(255)),
        proptest::option::of(printable(48)),
        proptest::option::of(printable(128)),
        proptest::option::of(printable(32)),
    );
    let sd = vec((sd_name(), vec((sd_name(), any::<String>()), 0..4)), 0..4).prop_map(|mut sd| {
        // SD-IDs must be unique in strict mode.
        let mut seen = std::collections::HashSet::new();
        sd.retain(|(id, _)| seen.insert(id.clone()));
        sd
    });
    let msg = proptest::option::of(prop_oneof![
        any::<String>().prop_map(|s| (true, s.into_bytes())),
        vec(any::<u8>(), 0..200).prop_map(|b| (false, b)),
    ]);
    (
        0u8..=191,
        1u16..=999,
        proptest::option::of(timestamp()),
        header,
        sd,
        msg,
    )
        .prop_map(|(pri, version, timestamp, (h, a, p, m), sd, msg)| Parts {
            pri,
            version,
            timestamp,
            header: [h, a, p, m],
            sd,
            msg: msg.map(|(bom, bytes)| {
                // Without a BOM, MSG must not itself start with one.
                let bytes = if !bom && bytes.starts_with(b"\xEF\xBB\xBF") {
                    bytes[3..].to_vec()
                } else {
                    bytes
                };
                (bom, bytes)
            }),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn rfc5424_messages_round_trip(p in parts()) {
        let escaped: Vec<Vec<(String, String)>> = p.sd.iter()
            .map(|(_, params)| params.iter().map(|(n, v)| (n.clone(), escape_param_value(v).into_owned())).collect())
            .collect();
        let message = Rfc5424Message {
            pri: Pri::new(p.pri).unwrap(),
            version: p.version,
            timestamp: p.timestamp.as_deref().map(|t| (parse_rfc3339_strict(t.as_bytes()).unwrap().0, t)),
            hostname: p.header[0].as_deref(),
            app_name: p.header[1].as_deref(),
            proc_id: p.header[2].as_deref(),
            msg_id: p.header[3].as_deref(),
            structured_data: p.sd.iter().zip(&escaped).map(|((id, _), params)| SdElement {
                id,
                params: params.iter().map(|(name, v)| SdParam { name, escaped_value: v }).collect(),
            }).collect(),
            msg: p.msg.as_ref().map(|(bom, bytes)| Msg { bom: *bom, bytes }),
            has_duplicate_sd_id: false,
        };
        let mut wire = Vec::new();
        message.write_to(&mut wire);
        let parsed = parse_rfc5424(&wire, Rfc5424Options::default());
        prop_assert_eq!(parsed.as_ref(), Ok(&message));
        // And the unescaped values are the generated ones.
        for (element, (_, params)) in parsed.unwrap().structured_data.iter().zip(&p.sd) {
            for (param, (_, value)) in element.params.iter().zip(params) {
                let unescaped = param.value();
                prop_assert_eq!(unescaped.as_ref(), value.as_str());
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_always_keep_the_raw_bytes(bytes in vec(any::<u8>(), 0..600)) {
        let received = auditrelay_parsers::timestamp::DateTime::from_unix_micros(1_700_000_000_000_000);
        for format in [FormatChoice::Auto, FormatChoice::Rfc5424, FormatChoice::Rfc3164] {
            let options = ParseOptions { format, key_values: true, ..ParseOptions::default() };
            let record = parse(&bytes, &received, &options);
            prop_assert_eq!(record.raw, &bytes[..]);
            let json: serde_json::Value = serde_json::from_slice(&record.to_json()).unwrap();
            prop_assert!(json.get("raw").is_some() || json.get("raw_b64").is_some());
            // The writer's strings are exactly the record's: `raw` the input when it is text.
            prop_assert_eq!(json["raw"].as_str(), std::str::from_utf8(&bytes).ok());
            prop_assert_eq!(json["message"].as_str(), record.message.as_deref());
        }
    }

    #[test]
    fn syslog_shaped_noise_never_panics(
        chunks in vec(prop_oneof![
            Just(b"<13>".to_vec()), Just(b"<191>1 ".to_vec()), Just(b"Jan  1 00:00:00 ".to_vec()),
            Just(b"2024 Feb 29 23:59:59.999 UTC: ".to_vec()), Just(b"%ASA-6-1: ".to_vec()),
            Just(b"[a b=\"\\\\\\]\"]".to_vec()), Just(b"CEF:0|a|b|c|d|e|f|k=v ".to_vec()),
            Just(b"LEEF:2.0|a|b|c|d|x09|k=v".to_vec()), Just(b"date=2024-01-01 time=00:00:00 ".to_vec()),
            Just(b"123: ".to_vec()), Just(b"1,2024/01/01 00:00:00,".to_vec()), Just(b"fe80::".to_vec()),
            vec(any::<u8>(), 0..8),
        ], 0..12)
    ) {
        let bytes: Vec<u8> = chunks.concat();
        let received = auditrelay_parsers::timestamp::DateTime::from_unix_micros(0);
        let record = parse(&bytes, &received, &ParseOptions { key_values: true, ..ParseOptions::default() });
        prop_assert_eq!(record.raw, &bytes[..]);
    }

    #[test]
    fn framing_never_panics_and_accounts_for_every_byte(
        bytes in vec(prop_oneof![Just(b'\n'), Just(0u8), Just(b' '), Just(b'<'), b'0'..=b'9', any::<u8>()], 0..400),
        max in 1usize..64,
    ) {
        for framing in [Framing::Auto, Framing::OctetCounting, Framing::Lf, Framing::Nul] {
            let mut discarded = 0;
            let frames = split_stream(framing, max, &bytes, |_, n| discarded += n);
            let kept: usize = frames.iter().map(|f| f.bytes.len()).sum();
            prop_assert!(kept + discarded <= bytes.len());
            prop_assert!(frames.iter().all(|f| f.bytes.len() <= max));
        }
    }
}
