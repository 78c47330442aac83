//! RELP (the Reliable Event Logging Protocol of rsyslog's librelp): `open`, `syslog`, `close`,
//! with `rsp 200` sent for a message only after its batch is committed. Replies go out in the
//! order the commands came, as librelp expects.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot};

use super::stream::read_more;
use super::{Ingest, Peer, Received};

/// Unanswered commands per connection; librelp's default window is 128.
const WINDOW: usize = 1024;
/// The most DATA any command but an open session's `syslog` may carry: `open` offers and
/// `close` are a few hundred bytes. More is a protocol error, found before the DATA is read.
const MAX_CONTROL_DATA: usize = 64 * 1024;
/// How long one write of replies may wait for a client that does not read them: then the
/// session is closed (its unanswered messages are resent by the client).
const REPLY_WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Once the relay is stopping, how long a write of replies may still wait.
const REPLY_WRITE_GRACE: Duration = Duration::from_secs(2);
/// The offer sent in answer to `open`.
const OPEN_OFFER: &str = "200 OK\nrelp_version=0\nrelp_software=auditrelay\ncommands=syslog";

/// One parsed RELP frame.
#[derive(Debug, PartialEq, Eq)]
pub struct RelpFrame<'a> {
    pub txnr: u64,
    pub command: &'a [u8],
    pub data: &'a [u8],
}

/// The outcome of reading a frame from the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    Incomplete,
    Frame {
        frame: RelpFrame<'a>,
        consumed: usize,
    },
    /// An open session's `syslog` frame whose DATALEN exceeds the maximum message size: the
    /// frame's data is its first `max` bytes, `consumed` covers the header and them, and
    /// `skip` more bytes of DATA follow, then the LF. They are dropped as they stream in, so
    /// a declared length never makes the relay buffer more than the maximum.
    Oversize {
        frame: RelpFrame<'a>,
        declared: usize,
        consumed: usize,
        skip: usize,
    },
    Invalid(&'static str),
}

fn number(buf: &[u8], max_digits: usize) -> Result<Option<(u64, usize)>, &'static str> {
    let n = buf
        .iter()
        .take(max_digits + 1)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if n > max_digits {
        return Err("number too long");
    }
    if n == buf.len() {
        return Ok(None);
    }
    if n == 0 {
        return Err("expected a number");
    }
    let v = buf[..n]
        .iter()
        .fold(0u64, |a, d| a * 10 + u64::from(d - b'0'));
    Ok(Some((v, n)))
}

/// Parses `TXNR SP COMMAND SP DATALEN [SP DATA] LF`. `max_syslog` is the most DATA kept of a
/// `syslog` frame, `None` before the session is open (then `syslog` is held to the small bound
/// of the other commands).
pub fn parse_frame(buf: &[u8], max_syslog: Option<usize>) -> Parsed<'_> {
    let (txnr, mut i) = match number(buf, 9) {
        Ok(Some(v)) => v,
        Ok(None) => return Parsed::Incomplete,
        Err(e) => return Parsed::Invalid(e),
    };
    if buf[i] != b' ' {
        return Parsed::Invalid("expected a space after TXNR");
    }
    i += 1;
    let cmd_len = buf[i..]
        .iter()
        .take(33)
        .take_while(|c| c.is_ascii_alphabetic())
        .count();
    if i + cmd_len == buf.len() {
        return Parsed::Incomplete;
    }
    if cmd_len == 0 || cmd_len > 32 || buf[i + cmd_len] != b' ' {
        return Parsed::Invalid("expected a command");
    }
    let command = &buf[i..i + cmd_len];
    i += cmd_len + 1;
    let (len, n) = match number(&buf[i..], 9) {
        Ok(Some(v)) => v,
        Ok(None) => return Parsed::Incomplete,
        Err(e) => return Parsed::Invalid(e),
    };
    i += n;
    let len = len as usize;
    let (cap, kept_truncated) = match (command, max_syslog) {
        (b"syslog", Some(max)) => (max, true),
        _ => (MAX_CONTROL_DATA, false),
    };
    if len > cap && !kept_truncated {
        return Parsed::Invalid("DATALEN too large for this command");
    }
    let data_start = if len > 0 {
        match buf.get(i) {
            None => return Parsed::Incomplete,
            Some(b' ') => i + 1,
            Some(_) => return Parsed::Invalid("expected a space before DATA"),
        }
    } else {
        i
    };
    if len > cap {
        if buf.len() < data_start + cap {
            return Parsed::Incomplete;
        }
        return Parsed::Oversize {
            frame: RelpFrame {
                txnr,
                command,
                data: &buf[data_start..data_start + cap],
            },
            declared: len,
            consumed: data_start + cap,
            skip: len - cap,
        };
    }
    match buf.get(data_start + len) {
        None => Parsed::Incomplete,
        Some(b'\n') => Parsed::Frame {
            frame: RelpFrame {
                txnr,
                command,
                data: &buf[data_start..data_start + len],
            },
            consumed: data_start + len + 1,
        },
        Some(_) => Parsed::Invalid("expected LF after DATA"),
    }
}

/// A reply, in command order.
enum Reply {
    Now(u64, &'static str),
    AfterCommit(u64, oneshot::Receiver<u64>),
}

async fn write_reply<W: AsyncWrite + Unpin>(out: &mut W, txnr: u64, data: &str) -> io::Result<()> {
    let line = if data.is_empty() {
        format!("{txnr} rsp 0\n")
    } else {
        format!("{txnr} rsp {} {data}\n", data.len())
    };
    out.write_all(line.as_bytes()).await
}

/// Runs one write of replies, bounded: by [`REPLY_WRITE_TIMEOUT`], and once the relay stops by
/// [`REPLY_WRITE_GRACE`], so that a client that never reads cannot hold the session (and with
/// it the pipeline, and so the relay's exit) open.
async fn bounded<T>(ingest: &Ingest, write: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    let mut shutdown = ingest.shutdown.clone();
    let stopping = async {
        shutdown.wait().await;
        tokio::time::sleep(REPLY_WRITE_GRACE).await;
    };
    tokio::select! {
        r = write => r,
        _ = tokio::time::sleep(REPLY_WRITE_TIMEOUT) => Err(io::Error::new(io::ErrorKind::TimedOut, "client does not read its replies")),
        _ = stopping => Err(io::Error::new(io::ErrorKind::TimedOut, "relay stopping; client does not read its replies")),
    }
}

async fn write_replies<W: AsyncWrite + Unpin>(
    writer: W,
    mut replies: mpsc::Receiver<Reply>,
    ingest: Arc<Ingest>,
) -> io::Result<()> {
    let mut out = BufWriter::new(writer);
    while let Some(reply) = replies.recv().await {
        match reply {
            Reply::Now(txnr, data) => bounded(&ingest, write_reply(&mut out, txnr, data)).await?,
            Reply::AfterCommit(txnr, mut committed) => {
                let result = match committed.try_recv() {
                    Err(oneshot::error::TryRecvError::Empty) => {
                        // Nothing more to say until the next commit: send what is buffered,
                        // or the client, its window full, would wait for it.
                        bounded(&ingest, out.flush()).await?;
                        committed.await.ok()
                    }
                    other => other.ok(),
                };
                // Without a commit (the write path went away), the client must resend.
                let data = if result.is_some() {
                    "200 OK"
                } else {
                    "500 not committed"
                };
                bounded(&ingest, write_reply(&mut out, txnr, data)).await?;
            }
        }
        if replies.is_empty() {
            bounded(&ingest, out.flush()).await?;
        }
    }
    if ingest.shutdown.is_set() {
        // Tell the client the server is going away, so it reconnects instead of waiting.
        bounded(&ingest, out.write_all(b"0 serverclose 0\n")).await?;
    }
    bounded(&ingest, out.flush()).await?;
    bounded(&ingest, out.shutdown()).await
}

/// Serves one RELP session until `close`, the end of the stream, or shutdown.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    peer: Peer,
    ingest: Arc<Ingest>,
) -> io::Result<()> {
    let (mut reader, writer) = tokio::io::split(stream);
    let (replies, pending) = mpsc::channel(WINDOW);
    let writer = tokio::spawn(write_replies(writer, pending, ingest.clone()));
    let max = ingest.config.max_message_size;
    let mut shutdown = ingest.shutdown.clone();
    let mut buf = Vec::new();
    let mut start = 0;
    let mut opened = false;
    // Bytes of an oversize frame's DATA still to drop, then its LF.
    let mut skip: Option<usize> = None;
    let mut received = Received::now();
    'session: loop {
        loop {
            if let Some(left) = skip {
                let n = left.min(buf.len() - start);
                start += n;
                if n < left {
                    skip = Some(left - n);
                    break;
                }
                match buf.get(start) {
                    None => {
                        skip = Some(0);
                        break;
                    }
                    Some(b'\n') => {
                        start += 1;
                        skip = None;
                    }
                    Some(_) => {
                        tracing::info!(listener = %ingest.config.name, peer = %peer.ip, why = "expected LF after DATA", "RELP protocol error; closing");
                        break 'session;
                    }
                }
            }
            let (frame, consumed, declared) = match parse_frame(
                &buf[start..],
                opened.then_some(max),
            ) {
                Parsed::Incomplete => break,
                Parsed::Invalid(why) => {
                    tracing::info!(listener = %ingest.config.name, peer = %peer.ip, why, "RELP protocol error; closing");
                    break 'session;
                }
                Parsed::Frame { frame, consumed } => (frame, consumed, None),
                Parsed::Oversize {
                    frame,
                    declared,
                    consumed,
                    skip: rest,
                } => {
                    skip = Some(rest);
                    (frame, consumed, Some(declared))
                }
            };
            let reply = match frame.command {
                b"open" => {
                    opened = true;
                    Reply::Now(frame.txnr, OPEN_OFFER)
                }
                b"syslog" if opened => {
                    let defect = declared.map(|declared| {
                        format!("message truncated: {declared} bytes, first {max} kept")
                    });
                    let (ack, committed) = oneshot::channel();
                    let record =
                        ingest.prepare(frame.data, defect.as_deref(), &peer, &received, Some(ack));
                    if ingest.pipeline.send(record).await.is_err() {
                        break 'session;
                    }
                    Reply::AfterCommit(frame.txnr, committed)
                }
                b"close" => {
                    tokio::select! {
                        biased;
                        _ = replies.send(Reply::Now(frame.txnr, "")) => {}
                        _ = shutdown.wait() => {}
                    }
                    break 'session;
                }
                b"syslog" => Reply::Now(frame.txnr, "500 open the session first"),
                _ => Reply::Now(frame.txnr, "500 unknown command"),
            };
            start += consumed;
            // A full window means the client is not reading its replies: stop reading its
            // commands, but not past shutdown, which must not wait on a client.
            tokio::select! {
                biased;
                r = replies.send(reply) => if r.is_err() { break 'session },
                _ = shutdown.wait() => break 'session,
            }
        }
        buf.drain(..start);
        start = 0;
        if !read_more(&mut reader, &mut buf, &ingest)
            .await
            .unwrap_or(false)
        {
            break;
        }
        received = Received::now();
    }
    drop(replies);
    writer.await.map_err(io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_whole_and_wait_when_partial() {
        let buf = b"1 open 5 hello\n2 close 0\n";
        let Parsed::Frame { frame, consumed } = parse_frame(buf, None) else {
            panic!()
        };
        assert_eq!(
            (frame.txnr, frame.command, frame.data),
            (1, &b"open"[..], &b"hello"[..])
        );
        let Parsed::Frame { frame, .. } = parse_frame(&buf[consumed..], None) else {
            panic!()
        };
        assert_eq!((frame.command, frame.data), (&b"close"[..], &b""[..]));
        for cut in 0..14 {
            assert_eq!(
                parse_frame(&buf[..cut], None),
                Parsed::Incomplete,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn junk_is_invalid() {
        assert!(matches!(
            parse_frame(b"x open 0\n", None),
            Parsed::Invalid(_)
        ));
        assert!(matches!(
            parse_frame(b"1 open 3 abcd\n", None),
            Parsed::Invalid(_)
        ));
        assert!(matches!(
            parse_frame(b"1 open 99999999999 ", None),
            Parsed::Invalid(_)
        ));
    }

    #[test]
    fn a_large_datalen_before_open_is_refused_before_its_data_arrives() {
        assert_eq!(
            parse_frame(b"1 syslog 16777216 ", None),
            Parsed::Invalid("DATALEN too large for this command")
        );
        assert_eq!(
            parse_frame(b"1 open 16777216 ", Some(1024)),
            Parsed::Invalid("DATALEN too large for this command")
        );
    }

    #[test]
    fn an_oversize_syslog_frame_keeps_its_first_bytes_and_skips_the_rest() {
        assert_eq!(parse_frame(b"7 syslog 10 abc", Some(4)), Parsed::Incomplete);
        assert_eq!(
            parse_frame(b"7 syslog 10 abcdef", Some(4)),
            Parsed::Oversize {
                frame: RelpFrame {
                    txnr: 7,
                    command: b"syslog",
                    data: b"abcd",
                },
                declared: 10,
                consumed: 16,
                skip: 6,
            }
        );
    }
}
