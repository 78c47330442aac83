//! `auditrelay parse`: replays a captured byte stream through framing and parsing, and writes
//! one JSON record per frame. Used to check what the relay would make of a device's output.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use auditrelay_parsers::framing::{DiscardReason, FrameDecoder, Framing, Step};
use auditrelay_parsers::timestamp::DateTime;
use auditrelay_parsers::{parse, ParseOptions};

/// How many bytes to read from the input at a time.
const READ_CHUNK: usize = 64 * 1024;

/// What to do with the stream.
#[derive(Debug, Clone, Copy)]
pub struct ReplayOptions {
    pub framing: Framing,
    pub multiline: bool,
    pub max_frame: usize,
    pub parse: ParseOptions,
    /// Receive time to stamp on every record; `None` means the current time for each frame.
    pub received_at: Option<DateTime>,
}

/// Counts of what the replay produced, for the summary on stderr.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplaySummary {
    pub frames: u64,
    pub by_format: BTreeMap<&'static str, u64>,
    pub by_dialect: BTreeMap<&'static str, u64>,
    /// Frames that were truncated, incomplete or junk (kept, with `parse_error`).
    pub defective_frames: u64,
    pub empty_frames: u64,
    pub oversize_bytes_dropped: u64,
}

impl ReplaySummary {
    /// One line per count, as printed on stderr.
    pub fn render(&self) -> String {
        let mut out = format!("frames: {}\n", self.frames);
        for (format, n) in &self.by_format {
            out.push_str(&format!("format {format}: {n}\n"));
        }
        for (dialect, n) in &self.by_dialect {
            out.push_str(&format!("dialect {dialect}: {n}\n"));
        }
        out.push_str(&format!(
            "defective frames (kept): {}\nempty frames skipped: {}\noversize bytes dropped: {}\n",
            self.defective_frames, self.empty_frames, self.oversize_bytes_dropped
        ));
        out
    }
}

fn now() -> DateTime {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    DateTime::from_unix_micros(micros)
}

/// Frames and parses everything `input` yields, writing JSON lines to `output` in input order.
pub fn replay(
    mut input: impl Read,
    output: impl Write,
    options: &ReplayOptions,
) -> io::Result<ReplaySummary> {
    let mut out = io::BufWriter::with_capacity(256 * 1024, output);
    let mut decoder =
        FrameDecoder::new(options.framing, options.max_frame).with_multiline(options.multiline);
    let mut summary = ReplaySummary::default();
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK * 2);
    let mut start = 0;
    let mut eof = false;
    let mut line = Vec::with_capacity(4096);
    loop {
        match decoder.decode(&buf[start..], eof) {
            Step::Frame { consumed, frame } => {
                let received = options.received_at.unwrap_or_else(now);
                let mut record = parse(frame.bytes, &received, &options.parse);
                if let Some(defect) = frame.defect() {
                    record.add_parse_error(&defect);
                    summary.defective_frames += 1;
                }
                summary.frames += 1;
                *summary.by_format.entry(record.format.name()).or_default() += 1;
                if let Some(d) = record.dialect {
                    *summary.by_dialect.entry(d.name()).or_default() += 1;
                }
                line.clear();
                record.write_json(&mut line);
                line.push(b'\n');
                out.write_all(&line)?;
                start += consumed;
            }
            Step::Discard { consumed, reason } => {
                match reason {
                    DiscardReason::EmptyFrame => summary.empty_frames += 1,
                    DiscardReason::OversizeRemainder => {
                        summary.oversize_bytes_dropped += consumed as u64
                    }
                }
                start += consumed;
            }
            Step::NeedMore if eof => break,
            Step::NeedMore => {
                buf.drain(..start);
                start = 0;
                let len = buf.len();
                buf.resize(len + READ_CHUNK, 0);
                let n = loop {
                    match input.read(&mut buf[len..]) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                };
                buf.truncate(len + n);
                eof = n == 0;
            }
        }
    }
    out.flush()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8], framing: Framing) -> (Vec<serde_json::Value>, ReplaySummary) {
        let options = ReplayOptions {
            framing,
            multiline: false,
            max_frame: 1 << 20,
            parse: ParseOptions::default(),
            received_at: Some(DateTime::from_unix_micros(0)),
        };
        let mut out = Vec::new();
        let summary = replay(input, &mut out, &options).unwrap();
        let lines = out
            .split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        (lines, summary)
    }

    #[test]
    fn one_line_per_frame_in_input_order() {
        let (lines, summary) = run(
            b"<13>Jan  1 00:00:00 h a: one\n\n12 <13>1 - - -\xff\xfe\n",
            Framing::Auto,
        );
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["message"], "one");
        assert_eq!(lines[1]["format"], "raw");
        // The octet count covers up to 0xff; the 0xfe after it is a frame of its own.
        assert_eq!(lines[2]["raw_b64"], "/g==");
        assert_eq!(summary.empty_frames, 1);
        assert_eq!(summary.by_format.get("raw"), Some(&2));
    }

    #[test]
    fn frames_spanning_read_chunks_are_reassembled() {
        let mut input = Vec::new();
        let body = "x".repeat(READ_CHUNK);
        input.extend_from_slice(format!("{} <13>1 - - - - - - {body}", body.len() + 18).as_bytes());
        let (lines, _) = run(&input, Framing::Auto);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["message"].as_str().unwrap().len(), READ_CHUNK);
    }
}
