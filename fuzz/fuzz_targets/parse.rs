//! Every parser mode on arbitrary bytes: no panic, the raw bytes always kept, JSON always valid
//! and holding exactly the record's strings.
#![no_main]

use auditrelay_parsers::timestamp::DateTime;
use auditrelay_parsers::{parse, FormatChoice, ParseOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let received = DateTime::from_unix_micros(1_767_225_600_000_000);
    for format in [
        FormatChoice::Auto,
        FormatChoice::Rfc5424,
        FormatChoice::Rfc3164,
    ] {
        let options = ParseOptions {
            format,
            key_values: true,
            default_offset_minutes: -330,
        };
        let record = parse(data, &received, &options);
        assert_eq!(record.raw, data);
        // Valid JSON whose strings are exactly the record's: `raw` the input when it is text,
        // `message`, and each field's first value, the header's fields before `fields`, and
        // no other field.
        let json: serde_json::Value = serde_json::from_slice(&record.to_json()).unwrap();
        assert_eq!(json["raw"].as_str(), std::str::from_utf8(data).ok());
        assert_eq!(json["message"].as_str(), record.message.as_deref());
        let header = record.header_fields.pairs(record.app_name.as_deref());
        let all: Vec<(&str, &str)> = header
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain(record.fields.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
            .collect();
        let mut distinct = 0;
        for (i, (key, value)) in all.iter().enumerate() {
            if !all[..i].iter().any(|(k, _)| k == key) {
                distinct += 1;
                assert_eq!(json["fields"][*key].as_str(), Some(*value));
            }
        }
        let written = json.get("fields").map_or(0, |f| f.as_object().unwrap().len());
        assert_eq!(written, distinct);
    }
});
