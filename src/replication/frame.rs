//! The peer wire format: a frame is a 4-byte big-endian length, then that many bytes (a kind
//! byte and a bincode body). Frames are read as their bytes arrive: a declared length is only a
//! promise, so memory grows with what came, never with what was announced.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest frame (kind byte and body) either side accepts.
///
/// The largest frames are Raft appends: at most 16 entries (`max_payload_entries`), each one
/// write batch of up to `batch.max_bytes` (at most [`MAX_BATCH_BYTES`], 4 MiB) of records'
/// JSON, so 64 MiB. A batch closes once it holds `batch.max_bytes`, so it can overshoot by the
/// records of one receive (64 records of up to `limits.max_message_size` each, plus their
/// parsed fields), and each record carries a few dozen bytes of bincode framing: half again
/// as much, 96 MiB, covers both. A snapshot chunk (4 MiB) and every other request are far
/// smaller.
pub const MAX_FRAME: usize = 96 << 20;

/// The largest `batch.max_bytes` a cluster allows, so that an append fits [`MAX_FRAME`].
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// How much the buffer grows by at most before the bytes that fill it have arrived.
const READ_STEP: usize = 64 << 10;

/// Why no frame was read.
#[derive(Debug)]
pub enum FrameError {
    /// The connection ended cleanly between frames.
    Closed,
    /// The declared length is over [`MAX_FRAME`]; nothing after the length was read.
    TooLarge(usize),
    /// A frame of length 0 (it must hold at least the kind byte).
    Empty,
    Io(io::Error),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Closed => write!(f, "connection closed"),
            FrameError::TooLarge(len) => {
                write!(f, "frame of {len} bytes declared; the limit is {MAX_FRAME}")
            }
            FrameError::Empty => write!(f, "frame of 0 bytes declared"),
            FrameError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<FrameError> for io::Error {
    fn from(e: FrameError) -> io::Error {
        match e {
            FrameError::Io(e) => e,
            other => io::Error::other(other.to_string()),
        }
    }
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    kind: u8,
    body: &[u8],
) -> io::Result<()> {
    let len = body.len() + 1;
    if len > MAX_FRAME {
        return Err(io::Error::other(format!(
            "a peer frame of {len} bytes is over the limit of {MAX_FRAME}"
        )));
    }
    w.write_all(&(len as u32).to_be_bytes()).await?;
    w.write_all(&[kind]).await?;
    w.write_all(body).await?;
    w.flush().await
}

/// Reads a frame's length and checks it; the frame's bytes are left unread.
pub async fn read_len<R: AsyncRead + Unpin>(r: &mut R) -> Result<usize, FrameError> {
    let mut header = [0u8; 4];
    let first = r.read(&mut header).await.map_err(FrameError::Io)?;
    if first == 0 {
        return Err(FrameError::Closed);
    }
    r.read_exact(&mut header[first..])
        .await
        .map_err(FrameError::Io)?;
    let len = u32::from_be_bytes(header) as usize;
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    Ok(len)
}

/// Reads `len` bytes onto the end of `buf`, growing it by at most [`READ_STEP`] ahead of the
/// bytes that arrived; when cut short (an error, or the caller's timeout dropping this
/// future), `buf` holds what did arrive.
pub async fn read_exact_growing<R: AsyncRead + Unpin>(
    r: &mut R,
    len: usize,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    let end = buf.len() + len;
    while buf.len() < end {
        let step = (end - buf.len()).min(READ_STEP);
        buf.reserve_exact(step);
        let got = (&mut *r).take(step as u64).read_to_end(buf).await?;
        if got < step {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(())
}

/// Reads the rest of a frame whose length [`read_len`] read: its kind byte and its body.
pub async fn read_rest<R: AsyncRead + Unpin>(r: &mut R, len: usize) -> io::Result<(u8, Vec<u8>)> {
    let kind = r.read_u8().await?;
    let mut body = Vec::new();
    read_exact_growing(r, len - 1, &mut body).await?;
    Ok((kind, body))
}

/// Reads one whole frame: for answers, which the caller's own timeout bounds.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<(u8, Vec<u8>), FrameError> {
    let len = read_len(r).await?;
    read_rest(r, len).await.map_err(FrameError::Io)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn a_frame_round_trips() {
        let mut wire = Vec::new();
        write_frame(&mut wire, 2, b"vote").await.unwrap();
        let (kind, body) = read_frame(&mut &wire[..]).await.unwrap();
        assert_eq!((kind, &body[..]), (2, &b"vote"[..]));
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_before_its_bytes_are_read() {
        let declared = (MAX_FRAME + 1) as u32;
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(&declared.to_be_bytes()).await.unwrap();
        client.write_all(b"rest of the frame").await.unwrap();
        match read_len(&mut server).await {
            Err(FrameError::TooLarge(len)) => assert_eq!(len, MAX_FRAME + 1),
            other => panic!("{other:?}"),
        }
        let mut left = [0u8; 17];
        server.read_exact(&mut left).await.unwrap();
        assert_eq!(
            &left, b"rest of the frame",
            "nothing after the length was read"
        );
    }

    #[tokio::test]
    async fn a_frame_of_zero_bytes_is_refused() {
        let wire = 0u32.to_be_bytes();
        assert!(matches!(
            read_len(&mut &wire[..]).await,
            Err(FrameError::Empty)
        ));
    }

    #[tokio::test]
    async fn a_declared_100_mib_body_that_sends_10_bytes_holds_only_a_read_step() {
        // The body reader is bounded by what arrives, not by the length it is told: even past
        // MAX_FRAME, which `read_len` enforces before it.
        let declared = 100usize << 20;
        let (mut client, mut server) = tokio::io::duplex(1 << 10);
        client.write_all(&[1u8; 10]).await.unwrap();
        // The client stays open and sends nothing more: the reader stalls until cut off.
        let mut buf = Vec::new();
        let stalled = tokio::time::timeout(
            Duration::from_millis(200),
            read_exact_growing(&mut server, declared, &mut buf),
        )
        .await;
        assert!(stalled.is_err(), "the read should still wait for bytes");
        assert_eq!(buf, vec![1u8; 10]);
        assert!(
            buf.capacity() <= READ_STEP,
            "{} bytes allocated for 10 that arrived",
            buf.capacity()
        );
        drop(client);
    }

    #[tokio::test]
    async fn a_frame_cut_short_is_an_error() {
        let mut wire = 10u32.to_be_bytes().to_vec();
        wire.extend_from_slice(&[1, 2, 3]);
        assert!(matches!(
            read_frame(&mut &wire[..]).await,
            Err(FrameError::Io(_))
        ));
    }
}
