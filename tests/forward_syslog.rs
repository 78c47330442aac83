//! Forwarding to real receivers: syslog-ng over TCP (octet counting) and TLS, rsyslog over
//! `imtcp` and `imrelp`. With nothing failing, 100,000 RFC 5424 messages arrive exactly once at
//! each, byte for byte as the relay received them apart from the added
//! `[auditrelay@32473 seq cluster]` element.

mod common;

use std::time::Duration;

use common::forwarding::{frames, send_tcp, strip_element, Tally};
use common::peers::{Input, Receiver};
use common::{free_port, have, wait_for, Relay};

const N: u64 = 100_000;

#[test]
fn four_real_receivers_get_100000_messages_exactly_once_and_byte_exact() {
    assert!(
        have("syslog-ng") && have("openssl"),
        "syslog-ng and openssl are required"
    );
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    common::pki::make_pki(&pki);
    let receivers = [
        ("ng-tcp", Input::SyslogNgTcp),
        (
            "ng-tls",
            Input::SyslogNgTls {
                cert: pki.join("server.crt"),
                key: pki.join("server.key"),
                client_ca: None,
            },
        ),
        ("rs-tcp", Input::RsyslogImtcp),
        ("rs-relp", Input::RsyslogImrelp),
    ]
    .map(|(name, input)| {
        (
            name,
            Receiver::start(&dir.path().join(name), free_port(), input),
        )
    });
    let url = |name: &str, r: &Receiver| match name {
        "ng-tcp" | "rs-tcp" => format!("syslog+tcp://127.0.0.1:{}?name={name}", r.port),
        "ng-tls" => format!(
            "syslog+tls://127.0.0.1:{}?name={name}&ca={}",
            r.port,
            pki.join("ca.crt").display()
        ),
        _ => format!("relp://127.0.0.1:{}?name={name}", r.port),
    };
    let tcp = free_port();
    let mut args = vec![format!("--listen=tcp://127.0.0.1:{tcp}")];
    args.extend(
        receivers
            .iter()
            .map(|(n, r)| format!("--forward={}", url(n, r))),
    );
    let relay = Relay::start(&dir.path().join("data"), &args);

    send_tcp(tcp, &frames(0..N));
    for (name, receiver) in &receivers {
        let tally = wait_for(
            &format!("{name} to receive {N} messages"),
            Duration::from_secs(300),
            || {
                let lines = receiver.lines();
                if (lines.len() as u64) < N {
                    std::thread::sleep(Duration::from_millis(200));
                    return None;
                }
                Some(Tally::of(&lines, N))
            },
        );
        // Give a late duplicate the chance to show.
        std::thread::sleep(Duration::from_millis(500));
        let tally = Tally::of(&receiver.lines(), N).max_by(tally);
        assert!(
            tally.foreign.is_empty(),
            "{name}: {} lines are not the messages sent, byte for byte; first: {:?}",
            tally.foreign.len(),
            tally.foreign.first()
        );
        assert_eq!(tally.missing(), 0, "{name}: messages missing");
        assert_eq!(
            tally.duplicates(),
            0,
            "{name}: duplicates with nothing failing"
        );
        assert_eq!(
            tally.seqs.len() as u64,
            N,
            "{name}: each message has its own seq"
        );
        eprintln!("{name}: {N} messages, each exactly once, byte-exact");
        assert_eq!(
            relay.metric(
                "auditrelay_forward_acknowledged_messages_total",
                &[&format!("destination=\"{name}\"")]
            ),
            N as f64
        );
    }
    assert_eq!(
        relay.metric("auditrelay_forward_dead_lettered_messages_total", &[]),
        0.0
    );
}

#[test]
fn the_relay_element_comes_off_received_lines() {
    let r =
        strip_element("<13>1 - h - - - [auditrelay@32473 seq=\"9\" cluster=\"ab\"] hi").unwrap();
    assert_eq!(r.original, "<13>1 - h - - - - hi");
    assert_eq!(r.seq, 9);
    let r = strip_element("<13>1 - h - - - [x@1][auditrelay@32473 seq=\"9\" cluster=\"ab\"] hi")
        .unwrap();
    assert_eq!(r.original, "<13>1 - h - - - [x@1] hi");
}

#[test]
fn a_tls_receiver_that_requires_a_client_certificate_gets_one_when_configured() {
    assert!(have("syslog-ng") && have("openssl"));
    const M: u64 = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    common::pki::make_pki(&pki);
    let receiver = Receiver::start(
        &dir.path().join("ng"),
        free_port(),
        Input::SyslogNgTls {
            cert: pki.join("server.crt"),
            key: pki.join("server.key"),
            client_ca: Some(pki.join("ca.crt")),
        },
    );
    let ca = pki.join("ca.crt");
    let tcp = free_port();
    let relay = Relay::start(
        &dir.path().join("data"),
        &[
            format!("--listen=tcp://127.0.0.1:{tcp}"),
            format!(
                "--forward=syslog+tls://127.0.0.1:{}?name=with-cert&ca={}&cert={}&key={}",
                receiver.port,
                ca.display(),
                pki.join("client.crt").display(),
                pki.join("client.key").display()
            ),
            format!(
                "--forward=syslog+tls://127.0.0.1:{}?name=without-cert&ca={}",
                receiver.port,
                ca.display()
            ),
        ],
    );
    send_tcp(tcp, &frames(0..M));
    let tally = wait_for(
        "messages through the mutual-TLS connection",
        Duration::from_secs(60),
        || {
            let tally = Tally::of(&receiver.lines(), M);
            (tally.missing() == 0).then_some(tally)
        },
    );
    assert_eq!(
        tally.duplicates(),
        0,
        "only the destination with a certificate got through"
    );
    wait_for(
        "the other destination to be refused",
        Duration::from_secs(30),
        || {
            (relay.metric(
                "auditrelay_forward_failures_total",
                &["destination=\"without-cert\""],
            ) > 0.0)
                .then_some(())
        },
    );
    assert_eq!(
        relay.metric(
            "auditrelay_forward_acknowledged_messages_total",
            &["destination=\"without-cert\""]
        ),
        0.0
    );
}
