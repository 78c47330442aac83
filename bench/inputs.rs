//! The messages both parser benchmarks use (`parse.rs`, `parse_loop.rs`), and when they were
//! received.

use auditrelay_parsers::timestamp::DateTime;
use syslog_loose::Message;

/// The receive time every benchmark parse is given (legacy timestamps take their year from it).
pub fn received() -> DateTime {
    DateTime::from_unix_micros(1_795_000_000_000_000)
}

/// (name, message): RFC 5424 with and without structured data, and legacy messages from the
/// devices that send most audit logs.
pub const INPUTS: [(&str, &str); 5] = [
    (
        "rfc5424_sd",
        r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 4242 ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] An application event log entry with some words in it"#,
    ),
    (
        "rfc5424_plain",
        "<34>1 2026-11-26T08:00:01.123456+01:00 web-01.example.net sshd 4321 - - Accepted publickey for deploy from 198.51.100.7 port 52144 ssh2",
    ),
    (
        "rfc3164_linux",
        "<38>Nov 26 08:00:02 web-01 sshd[4321]: Accepted publickey for deploy from 198.51.100.7 port 52144 ssh2",
    ),
    (
        "rfc3164_cisco_ios",
        "<189>1234: *Nov 26 08:00:04.123: %SYS-5-CONFIG_I: Configured from console by admin on vty0 (192.0.2.50)",
    ),
    (
        "rfc3164_fortigate",
        r#"<189>date=2026-11-26 time=08:00:09 devname="FGT-HQ" devid="FG100E4Q17000001" tz="+0100" logid="0000000013" type="traffic" subtype="forward" level="notice" srcip=10.0.0.1 dstip=203.0.113.20 action="accept""#,
    ),
];

/// syslog_loose's result as a relay would have to emit it: one JSON object.
pub fn loose_to_json(m: &Message<&str>, out: &mut Vec<u8>) {
    let sd: Vec<serde_json::Value> = m
        .structured_data
        .iter()
        .map(|e| {
            serde_json::json!({
                "id": e.id,
                "params": e.params().map(|(k, v)| [k.to_string(), v.to_string()]).collect::<Vec<_>>(),
            })
        })
        .collect();
    let value = serde_json::json!({
        "format": format!("{:?}", m.protocol),
        "facility": m.facility.map(|f| f.as_str()),
        "severity": m.severity.map(|s| s.as_str()),
        "timestamp": m.timestamp.map(|t| t.to_rfc3339()),
        "hostname": m.hostname,
        "app_name": m.appname,
        "proc_id": m.procid.as_ref().map(|p| p.to_string()),
        "msg_id": m.msgid,
        "structured_data": sd,
        "message": m.msg,
    });
    let _ = serde_json::to_writer(out, &value);
}
