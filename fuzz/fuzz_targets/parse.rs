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
        // `message`, and each field's first value.
        let json: serde_json::Value = serde_json::from_slice(&record.to_json()).unwrap();
        assert_eq!(json["raw"].as_str(), std::str::from_utf8(data).ok());
        assert_eq!(json["message"].as_str(), record.message.as_deref());
        for (i, (key, value)) in record.fields.iter().enumerate() {
            if !record.fields[..i].iter().any(|(k, _)| k == key) {
                assert_eq!(json["fields"][key.as_ref()].as_str(), Some(value.as_ref()));
            }
        }
    }
});
