//! `auditrelay parse` as a user runs it: a real process, real pipes.

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_auditrelay");

fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    stdout
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("every output line is JSON"))
        .collect()
}

#[test]
fn random_bytes_from_urandom_give_only_json_lines_with_the_raw_bytes() {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("head -c 1000000 /dev/urandom | {BIN} parse"))
        .output()
        .unwrap();
    assert!(out.status.success(), "exit status {:?}", out.status);
    let lines = json_lines(&out.stdout);
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(
            line.get("raw").is_some() || line.get("raw_b64").is_some(),
            "{line}"
        );
    }
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains(&format!("frames: {}", lines.len())),
        "{summary}"
    );
}

#[test]
fn bundled_sample_parses_every_dialect_in_input_order() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/samples/devices.log");
    let out = Command::new(BIN)
        .args(["parse", sample, "--received-at", "2026-11-26T09:00:00Z"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines = json_lines(&out.stdout);
    let dialects: Vec<&str> = lines
        .iter()
        .map(|l| l["dialect"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(
        dialects,
        [
            "-",
            "-",
            "linux",
            "linux",
            "cisco-ios",
            "cisco-ios",
            "cisco-asa",
            "cisco-nxos",
            "juniper",
            "fortigate",
            "paloalto",
            "mikrotik",
            "cef",
            "-",
            "-",
            "-"
        ]
    );
    assert_eq!(lines[3]["hostname"], "2001:db8::");
    assert_eq!(lines[13]["format"], "raw");
    assert_eq!(lines[15]["structured_data"][0]["params"][0][1], "v\"q");
}

#[test]
fn strict_format_makes_legacy_messages_raw() {
    let mut child = Command::new(BIN)
        .args(["parse", "--format", "rfc5424", "--framing", "lf"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"<13>Jan  1 00:00:00 h a: x\n<13>1 - - - - - - ok\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let lines = json_lines(&out.stdout);
    assert_eq!(lines[0]["format"], "raw");
    assert_eq!(lines[1]["format"], "rfc5424");
}

#[test]
fn usage_and_io_errors_exit_non_zero() {
    let bad_flag = Command::new(BIN)
        .args(["parse", "--framing", "xml"])
        .output()
        .unwrap();
    assert!(!bad_flag.status.success());
    let missing = Command::new(BIN)
        .args(["parse", "/nonexistent/capture"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/capture"));
}
