//! Every parser mode on arbitrary bytes: no panic, the raw bytes always kept, JSON always valid.
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
        let json = record.to_json();
        assert!(std::str::from_utf8(&json).is_ok());
    }
});
