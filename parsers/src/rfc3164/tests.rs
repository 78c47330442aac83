//! Real device messages, one test per shape.

use super::*;

fn parse(input: &[u8]) -> Rfc3164Message<'_> {
    parse_rfc3164(input, Rfc3164Options::default()).unwrap()
}

/// The value of `key` among the header's fields, then `fields`, as the record writes them.
fn field(m: &Rfc3164Message<'_>, key: &str) -> Option<String> {
    let tag = m.app_name.map(crate::payload::text);
    let header = m.header.pairs(tag.as_deref());
    match header.into_iter().find(|(k, _)| *k == key) {
        Some((_, v)) => Some(v),
        None => m
            .fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.to_string()),
    }
}

#[test]
fn linux_tag_with_pid() {
    let m = parse(b"<38>Jan 12 10:00:00 web-01 sshd[4321]: Accepted publickey for root");
    assert_eq!(m.pri.unwrap().value(), 38);
    assert_eq!(m.timestamp.unwrap().raw, b"Jan 12 10:00:00");
    assert_eq!(m.hostname, Some(&b"web-01"[..]));
    assert_eq!(
        (m.app_name, m.proc_id),
        (Some(&b"sshd"[..]), Some(&b"4321"[..]))
    );
    assert_eq!(m.msg, b"Accepted publickey for root");
    assert_eq!(m.dialect, Some(Dialect::Linux));
}

#[test]
fn space_padded_day_and_no_hostname() {
    let m = parse(b"<13>Feb  5 01:02:03 cron[7]: job done");
    assert_eq!(m.timestamp.unwrap().time.day, 5);
    assert_eq!(m.hostname, None);
    assert_eq!(m.app_name, Some(&b"cron"[..]));
}

#[test]
fn ipv6_hostname_ending_in_double_colon_is_a_hostname_not_a_tag() {
    let m = parse(b"<13>Jan 12 10:00:00 2001:db8:: kernel: link up");
    assert_eq!(m.hostname, Some(&b"2001:db8::"[..]));
    assert_eq!(m.app_name, Some(&b"kernel"[..]));
    assert_eq!(m.msg, b"link up");
    let m = parse(b"<13>Jan 12 10:00:00 fe80::1 ntpd[9]: sync");
    assert_eq!(m.hostname, Some(&b"fe80::1"[..]));
}

#[test]
fn cisco_ios_with_sequence_number_and_unsynchronized_clock() {
    let m = parse(b"<189>1234: *Mar  1 18:46:11.123: %SYS-5-CONFIG_I: Configured from console by vty0 (10.0.0.1)");
    assert_eq!(m.dialect, Some(Dialect::CiscoIos));
    assert_eq!(m.app_name, Some(&b"%SYS-5-CONFIG_I"[..]));
    assert_eq!(field(&m, "sequence").as_deref(), Some("1234"));
    assert_eq!(field(&m, "clock").as_deref(), Some("unsynchronized"));
    assert_eq!(field(&m, "mnemonic").as_deref(), Some("CONFIG_I"));
    assert_eq!(m.timestamp.unwrap().time.nanos, 123_000_000);
    assert_eq!(m.msg, b"Configured from console by vty0 (10.0.0.1)");
}

#[test]
fn cisco_ios_with_origin_hostname_and_year() {
    let m = parse(b"<189>000045: core-rtr1: Jan 12 2024 10:00:00.456 UTC: %LINEPROTO-5-UPDOWN: Line protocol on Interface Gi0/1, changed state to up");
    assert_eq!(m.dialect, Some(Dialect::CiscoIos));
    assert_eq!(m.hostname, Some(&b"core-rtr1"[..]));
    let t = m.timestamp.unwrap().time;
    assert_eq!((t.year, t.offset_minutes), (Some(2024), Some(0)));
}

#[test]
fn cisco_ios_xe_behind_a_standard_header() {
    let m = parse(b"<189>Jan 12 10:00:00 10.1.1.1 88: .Jan 12 10:00:00.001: %SEC-6-IPACCESSLOGP: list 101 denied tcp");
    assert_eq!(m.hostname, Some(&b"10.1.1.1"[..]));
    assert_eq!(m.dialect, Some(Dialect::CiscoIos));
    assert_eq!(field(&m, "sequence").as_deref(), Some("88"));
    assert_eq!(
        field(&m, "device_timestamp").as_deref(),
        Some("Jan 12 10:00:00.001")
    );
}

#[test]
fn cisco_asa_with_and_without_header() {
    let m = parse(b"<166>Jan 12 2024 10:00:00 asa1 : %ASA-6-302013: Built outbound TCP connection 1 for outside:1.2.3.4/443");
    assert_eq!(m.dialect, Some(Dialect::CiscoAsa));
    assert_eq!(m.hostname, Some(&b"asa1"[..]));
    assert_eq!(field(&m, "mnemonic").as_deref(), Some("302013"));
    let m = parse(b"<166>%ASA-4-106023: Deny tcp src outside:1.1.1.1/1 dst inside:2.2.2.2/22");
    assert_eq!(m.dialect, Some(Dialect::CiscoAsa));
    assert_eq!(m.timestamp, None);
}

#[test]
fn cisco_nxos_year_first() {
    let m =
        parse(b"<189>2024 Jan 12 10:00:00.123 UTC: %ETHPORT-5-IF_UP: Interface Ethernet1/1 is up");
    assert_eq!(m.dialect, Some(Dialect::CiscoNxos));
    let m = parse(b"<189>2024 Jan 12 10:00:00 nx-sw1 %ETHPORT-5-IF_DOWN_LINK_FAILURE: Interface Ethernet1/2 is down");
    assert_eq!(m.dialect, Some(Dialect::CiscoNxos));
    assert_eq!(m.hostname, Some(&b"nx-sw1"[..]));
}

#[test]
fn juniper_event_id() {
    let m = parse(b"<29>Jan 12 10:00:00 mx960-re0 mgd[12345]: UI_COMMIT: User 'admin' requested 'commit' operation");
    assert_eq!(m.dialect, Some(Dialect::Juniper));
    assert_eq!(field(&m, "event_id").as_deref(), Some("UI_COMMIT"));
}

#[test]
fn fortigate_without_header() {
    let m = parse(br#"<189>date=2024-01-12 time=10:00:00 devname="FGT-HQ" devid="FG100E" tz="+0100" logid="0000000013" type="traffic" srcip=10.0.0.1 action="accept""#);
    assert_eq!(m.dialect, Some(Dialect::Fortigate));
    assert_eq!(m.hostname, Some(&b"FGT-HQ"[..]));
    let ts = m.timestamp.unwrap();
    assert_eq!(ts.time.offset_minutes, Some(60));
    assert_eq!(ts.raw, b"date=2024-01-12 time=10:00:00");
    assert_eq!(field(&m, "srcip").as_deref(), Some("10.0.0.1"));
}

/// `timestamp_raw` runs from the `date` key to the end of the `time` word, quotes included,
/// wherever the pairs stand; the whole body when `time` comes first.
#[test]
fn fortigate_timestamp_raw_is_the_date_and_time_words() {
    let m = parse(br#"<189>logver=7 date="2024-01-12" time="10:00:00" devname=FGT tz=Z"#);
    assert_eq!(
        m.timestamp.unwrap().raw,
        br#"date="2024-01-12" time="10:00:00""#
    );
    let m = parse(b"<189>devname=FGT date=2024-01-12 x=1 time=10:00:00");
    assert_eq!(
        m.timestamp.unwrap().raw,
        b"date=2024-01-12 x=1 time=10:00:00"
    );
    let body = b"devname=FGT time=10:00:00 date=2024-01-12";
    let message = [&b"<189>"[..], body].concat();
    assert_eq!(parse(&message).timestamp.unwrap().raw, body);
}

#[test]
fn palo_alto_csv() {
    let m = parse(b"<14>Jan 12 10:00:00 PA-VM 1,2024/01/12 10:00:00,012345678901,TRAFFIC,end,2049,2024/01/12 10:00:00,10.0.0.1,8.8.8.8,0.0.0.0,0.0.0.0,allow-dns,,,dns,vsys1,trust,untrust,ethernet1/2,ethernet1/1,fwd,,12345,1,53000,53,0,0,0x19,udp,allow");
    assert_eq!(m.dialect, Some(Dialect::PaloAlto));
    assert_eq!(m.hostname, Some(&b"PA-VM"[..]));
    assert_eq!(field(&m, "type").as_deref(), Some("TRAFFIC"));
    assert_eq!(field(&m, "dst").as_deref(), Some("8.8.8.8"));
    assert_eq!(field(&m, "action").as_deref(), Some("allow"));
}

#[test]
fn mikrotik_topics_with_and_without_header() {
    let m = parse(b"<30>Jan 12 10:00:00 MikroTik system,info,account user admin logged in from 10.0.0.5 via ssh");
    assert_eq!(m.dialect, Some(Dialect::Mikrotik));
    assert_eq!(m.hostname, Some(&b"MikroTik"[..]));
    assert_eq!(m.app_name, Some(&b"system,info,account"[..]));
    assert_eq!(m.msg, b"user admin logged in from 10.0.0.5 via ssh");
    let m = parse(b"<30>firewall,info input: in:ether1 out:(unknown 0)");
    assert_eq!(m.dialect, Some(Dialect::Mikrotik));
}

#[test]
fn no_pri_with_timestamp_is_legacy_without_is_an_error() {
    let m = parse(b"Jan 12 10:00:00 host app: hello");
    assert_eq!(m.pri, None);
    assert_eq!(m.app_name, Some(&b"app"[..]));
    assert_eq!(
        parse_rfc3164(b"hello world", Rfc3164Options::default()),
        Err(Rfc3164Error::NoPriNoHeader)
    );
    assert_eq!(
        parse_rfc3164(b"<192>x", Rfc3164Options::default()),
        Err(Rfc3164Error::InvalidPri)
    );
}

#[test]
fn iso_timestamp_and_fqdn() {
    let m = parse(b"<134>2024-01-12T10:00:00.123456+02:00 fw1.example.net filterlog[77]: 5,,,1000");
    let t = m.timestamp.unwrap().time;
    assert_eq!(
        (t.year, t.offset_minutes, t.frac_digits),
        (Some(2024), Some(120), 6)
    );
    assert_eq!(m.hostname, Some(&b"fw1.example.net"[..]));
}

#[test]
fn cef_after_header() {
    let m = parse(
        b"<134>Jan 12 10:00:00 ids1 CEF:0|Vendor|IDS|1.0|100|Port scan|7|src=10.0.0.9 dpt=22",
    );
    assert_eq!(m.dialect, Some(Dialect::Cef));
    assert_eq!(m.app_name, None);
    assert_eq!(field(&m, "dpt").as_deref(), Some("22"));
}

#[test]
fn pri_only_content_is_kept_as_message() {
    let m = parse(b"<13>just some words");
    assert_eq!((m.timestamp, m.hostname, m.app_name), (None, None, None));
    assert_eq!(m.msg, b"just some words");
}

/// The TAG reader before it became one pass: cut the word at its space, then find `:` and `[`
/// in it. The one-pass reader must give the same answers.
fn reference_tag(input: &[u8]) -> Option<Tag<'_>> {
    let tok = &input[..input.iter().position(|&c| c == b' ').unwrap_or(input.len())];
    let colon = tok.iter().position(|&c| c == b':')?;
    let head = &tok[..colon];
    let (name, pid) = match head.iter().position(|&c| c == b'[') {
        Some(open) if head.last() == Some(&b']') => {
            (&head[..open], Some(&head[open + 1..head.len() - 1]))
        }
        Some(_) => return None,
        None => (head, None),
    };
    let body = name.strip_prefix(b"%").unwrap_or(name);
    let name_ok =
        !name.is_empty() && name.len() <= MAX_TAG && body.iter().all(|&c| TAG_CHAR[usize::from(c)]);
    if !name_ok || pid.is_some_and(|p| p.is_empty() || p.contains(&b' ')) {
        return None;
    }
    let rest = &input[colon + 1..];
    Some(Tag {
        name,
        pid,
        rest: rest.strip_prefix(b" ").unwrap_or(rest),
    })
}

#[test]
fn tags_of_real_shapes_read_as_before() {
    let cases: [&[u8]; 12] = [
        b"sshd[4321]: Accepted",
        b"%SYS-5-CONFIG_I: Configured",
        b"%: x",
        b":",
        b"a[]: x",
        b"a[1[2]: x",
        b"a[1] x: y",
        b"a[1]x: y",
        b"kernel:",
        b"%%SYS: x",
        b"su: (to root)",
        b"no tag here",
    ];
    for input in cases {
        assert_eq!(tag(input), reference_tag(input), "{input:?}");
    }
}

proptest::proptest! {
    #[test]
    fn tags_read_as_before_on_any_input(
        input in crate::oracle::bytes_of(b"ab1%[]: -_./\xc3\xa9\t", 24)
    ) {
        proptest::prop_assert_eq!(tag(&input), reference_tag(&input));
    }

    #[test]
    fn long_tags_read_as_before(
        mnemonic in proptest::bool::ANY,
        name_len in 60usize..70,
        pid in proptest::option::of(0u32..99),
    ) {
        // The 64-byte limit counts a mnemonic's `%`.
        let mut input = if mnemonic { vec![b'%'] } else { Vec::new() };
        input.resize(name_len, b'a');
        if let Some(pid) = pid {
            input.extend_from_slice(format!("[{pid}]").as_bytes());
        }
        input.extend_from_slice(b": text");
        proptest::prop_assert_eq!(tag(&input), reference_tag(&input));
    }
}
