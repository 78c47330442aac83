//! `auditrelay dlq`: the records a destination refused for good. Listing reads the store (also
//! while the relay runs); replaying asks the running relay, whose forwarder for that
//! destination sends them again and releases each one the receiver takes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use auditrelay_parsers::timestamp::DateTime;

use crate::store::query::with_seq;
use crate::store::StoreReader;

/// Writes one JSON line per dead letter of `destination`: seq, when, why, and the record.
/// Returns how many there are.
pub fn list(data_dir: &Path, destination: &str, out: &mut dyn Write) -> Result<usize, String> {
    let reader = StoreReader::open(data_dir).map_err(|e| e.to_string())?;
    let letters = reader
        .dead_letters(destination)
        .map_err(|e| e.to_string())?;
    if letters.is_empty()
        && !reader
            .destinations()
            .map_err(|e| e.to_string())?
            .iter()
            .any(|(name, _)| name == destination)
    {
        // Not an error: a destination that has not saved its first cursor yet looks the same.
        eprintln!("note: no destination named {destination:?} has forwarded from this store yet");
    }
    for letter in &letters {
        let record = reader.get(letter.seq).map_err(|e| e.to_string())?;
        let mut line = format!(
            "{{\"seq\":{},\"at\":{},\"error\":{}",
            letter.seq,
            serde_json::Value::from(DateTime::from_unix_micros(letter.at_micros).to_rfc3339()),
            serde_json::Value::from(letter.error.as_str())
        )
        .into_bytes();
        if let Some(json) = record {
            line.extend_from_slice(b",\"record\":");
            with_seq(letter.seq, &json, &mut line);
        }
        line.extend_from_slice(b"}\n");
        out.write_all(&line).map_err(|e| e.to_string())?;
    }
    Ok(letters.len())
}

/// Asks the relay at `http` to send `destination`'s dead letters again; returns its answer.
pub fn replay(http: SocketAddr, destination: &str) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&http, Duration::from_secs(5))
        .map_err(|e| format!("{http}: {e} (is the relay running with --http {http}?)"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "POST /dlq/replay?destination={destination} HTTP/1.0\r\nHost: {http}\r\nContent-Length: 0\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(|e| e.to_string())?;
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .trim()
        .to_string();
    if status == 202 {
        Ok(body)
    } else {
        Err(format!("the relay answered {status}: {body}"))
    }
}
