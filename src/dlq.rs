//! `auditrelay dlq`: the records a destination refused for good. Listing reads the store (also
//! while the relay runs); replaying asks the running relay, whose forwarder for that
//! destination sends them again and releases each one the receiver takes.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

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

/// Asks the relay at `http` to send `destination`'s dead letters again, with the node's admin
/// token; returns its answer.
pub fn replay(http: SocketAddr, destination: &str, token: &str) -> Result<String, String> {
    let path = format!("/dlq/replay?destination={destination}");
    match crate::ops_client::request(http, "POST", &path, Some(token))? {
        (202, body) => Ok(body),
        (status, body) => Err(format!("the relay answered {status}: {body}")),
    }
}
