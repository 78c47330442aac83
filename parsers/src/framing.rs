//! RFC 6587 framing as a pure state machine: octet counting (§3.4.1) and non-transparent framing
//! with LF, CR LF or NUL trailers (§3.4.2), detected per frame, with a maximum frame size and
//! resynchronisation after junk.
//!
//! The decoder does no I/O and owns no buffer: the caller passes the bytes it has, and the
//! decoder says how many it used and where the frame is. That keeps it usable from a tokio codec,
//! a file reader or a fuzzer alike.

/// Which framing to expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// Per frame: octet counting when the frame starts with `MSG-LEN SP <`, otherwise
    /// non-transparent with LF or NUL, whichever comes first.
    #[default]
    Auto,
    /// Octet counting only; a frame that does not start with `MSG-LEN SP` is junk, read up to the
    /// next LF so that the stream resynchronises.
    OctetCounting,
    /// Non-transparent, LF trailer (a CR before it stays in the frame for the parser to strip).
    Lf,
    /// Non-transparent, NUL trailer.
    Nul,
}

/// The longest MSG-LEN we read as a number. Longer digit runs are junk, not lengths.
const MAX_LEN_DIGITS: usize = 10;

/// How one frame was delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    OctetCounted,
    /// Ended by LF.
    Lf,
    /// Ended by NUL.
    Nul,
    /// Ended by the end of the stream without a trailer.
    EndOfStream,
    /// Octet-counting was configured but the frame had no valid MSG-LEN: read up to a trailer.
    Junk,
}

/// One frame, borrowed from the caller's buffer; the MSG-LEN prefix and trailer are excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'b> {
    pub bytes: &'b [u8],
    pub kind: FrameKind,
    /// Set when the frame was longer than the maximum and only the first bytes are kept:
    /// the declared MSG-LEN, or `None` when a non-transparent frame had no trailer in reach.
    pub truncated: Option<Option<u64>>,
    /// The stream ended before the declared MSG-LEN was reached: `bytes` is what arrived.
    pub incomplete_of: Option<u64>,
}

impl Frame<'_> {
    /// Why the frame is not whole, in words for the record's `parse_error`; `None` when it is.
    pub fn defect(&self) -> Option<String> {
        match (self.truncated, self.incomplete_of) {
            (Some(Some(declared)), _) => Some(format!(
                "frame truncated: MSG-LEN {declared} exceeds the maximum, first {} bytes kept",
                self.bytes.len()
            )),
            (Some(None), _) => Some(format!(
                "frame truncated: no trailer within the maximum of {} bytes",
                self.bytes.len()
            )),
            (None, Some(declared)) => Some(format!(
                "frame incomplete: stream ended after {} of {declared} declared bytes",
                self.bytes.len()
            )),
            _ if self.kind == FrameKind::Junk => {
                Some("frame without a valid MSG-LEN; read up to the next trailer".to_string())
            }
            _ => None,
        }
    }
}

/// Why bytes were consumed without producing a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscardReason {
    /// An empty frame (a lone trailer, e.g. an LF after an octet-counted frame).
    EmptyFrame,
    /// The rest of a frame beyond the maximum size.
    OversizeRemainder,
}

/// The outcome of one decoding step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'b> {
    /// More bytes are needed before anything can be decided.
    NeedMore,
    /// `consumed` bytes from the start of the buffer made this frame.
    Frame { consumed: usize, frame: Frame<'b> },
    /// `consumed` bytes were dropped for `reason`.
    Discard {
        consumed: usize,
        reason: DiscardReason,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    FrameStart,
    /// Dropping the rest of an oversize octet-counted frame.
    SkipBytes(u64),
    /// Dropping the rest of an oversize non-transparent frame, up to its trailer.
    SkipToTrailer,
}

/// Splits a byte stream into syslog frames. Feed it the unconsumed bytes each time.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    framing: Framing,
    max_frame: usize,
    multiline: bool,
    state: State,
    /// How many bytes at the start of the current non-transparent frame were already searched
    /// without finding its end: the next search starts there. Without it, a sender that
    /// dribbles a long frame a byte at a time made every read search the whole frame again
    /// (quadratic in the frame's length). Valid because the caller passes the same unconsumed
    /// bytes again, with more after them; reset whenever bytes are consumed.
    scanned: usize,
}

impl FrameDecoder {
    /// A decoder for `framing` that keeps at most `max_frame` bytes of any frame (at least 1).
    pub fn new(framing: Framing, max_frame: usize) -> FrameDecoder {
        FrameDecoder {
            framing,
            max_frame: max_frame.max(1),
            multiline: false,
            state: State::FrameStart,
            scanned: 0,
        }
    }

    /// Keeps continuation lines in a non-transparent frame: a trailer ends a frame that starts
    /// with `<` only when the next byte starts a new message (`<`, or a MSG-LEN digit in auto
    /// mode). Multi-line messages (stack traces) then stay whole, at the cost of holding the last
    /// frame until the next byte arrives or the caller signals the end. Off by default, as in
    /// RFC 6587 §3.4.2, where every trailer ends a frame.
    pub fn with_multiline(mut self, multiline: bool) -> FrameDecoder {
        self.multiline = multiline;
        self
    }

    /// The longest frame this decoder keeps whole.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Decodes the next step from `buf`, the bytes not consumed so far. With `eof` set, the
    /// stream has ended: whatever is left becomes a frame, and `NeedMore` means `buf` is empty.
    pub fn decode<'b>(&mut self, buf: &'b [u8], eof: bool) -> Step<'b> {
        let step = self.step(buf, eof);
        if !matches!(step, Step::NeedMore) {
            self.scanned = 0;
        }
        step
    }

    fn step<'b>(&mut self, buf: &'b [u8], eof: bool) -> Step<'b> {
        if buf.is_empty() {
            return Step::NeedMore;
        }
        match self.state {
            State::SkipBytes(left) => {
                let n = left.min(buf.len() as u64);
                self.state = if n == left {
                    State::FrameStart
                } else {
                    State::SkipBytes(left - n)
                };
                Step::Discard {
                    consumed: n as usize,
                    reason: DiscardReason::OversizeRemainder,
                }
            }
            State::SkipToTrailer => {
                let (consumed, done) = match self.find_trailer(buf) {
                    Some((pos, _)) => (pos + 1, true),
                    None => (buf.len(), eof),
                };
                if done {
                    self.state = State::FrameStart;
                }
                Step::Discard {
                    consumed,
                    reason: DiscardReason::OversizeRemainder,
                }
            }
            State::FrameStart => self.frame_start(buf, eof),
        }
    }

    fn frame_start<'b>(&mut self, buf: &'b [u8], eof: bool) -> Step<'b> {
        match self.framing {
            Framing::Lf | Framing::Nul => self.non_transparent(buf, eof, false),
            Framing::Auto | Framing::OctetCounting => match self.msg_len(buf, eof) {
                LenPrefix::NeedMore => Step::NeedMore,
                LenPrefix::Len { len, prefix } => self.octet_counted(buf, eof, len, prefix),
                LenPrefix::NotALength => {
                    let junk = self.framing == Framing::OctetCounting;
                    self.non_transparent(buf, eof, junk)
                }
            },
        }
    }

    /// Reads `MSG-LEN SP` (and, in auto mode, requires the `<` of a PRI after it, so that a
    /// non-transparent message that happens to start with a number is not taken for a length).
    fn msg_len(&self, buf: &[u8], eof: bool) -> LenPrefix {
        let digits = buf
            .iter()
            .take(MAX_LEN_DIGITS + 1)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 || buf[0] == b'0' || digits > MAX_LEN_DIGITS {
            return LenPrefix::NotALength;
        }
        let need = if self.framing == Framing::Auto {
            digits + 2
        } else {
            digits + 1
        };
        if buf.len() < need {
            return if eof {
                LenPrefix::NotALength
            } else {
                LenPrefix::NeedMore
            };
        }
        if buf[digits] != b' ' || (self.framing == Framing::Auto && buf[digits + 1] != b'<') {
            return LenPrefix::NotALength;
        }
        let len = buf[..digits]
            .iter()
            .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
        LenPrefix::Len {
            len,
            prefix: digits + 1,
        }
    }

    fn octet_counted<'b>(&mut self, buf: &'b [u8], eof: bool, len: u64, prefix: usize) -> Step<'b> {
        let body = &buf[prefix..];
        let keep = len.min(self.max_frame as u64) as usize;
        if body.len() < keep {
            if !eof {
                return Step::NeedMore;
            }
            return Step::Frame {
                consumed: buf.len(),
                frame: Frame {
                    bytes: body,
                    kind: FrameKind::OctetCounted,
                    truncated: None,
                    incomplete_of: Some(len),
                },
            };
        }
        let truncated = (len > keep as u64).then_some(Some(len));
        if truncated.is_some() {
            self.state = State::SkipBytes(len - keep as u64);
        }
        Step::Frame {
            consumed: prefix + keep,
            frame: Frame {
                bytes: &body[..keep],
                kind: FrameKind::OctetCounted,
                truncated,
                incomplete_of: None,
            },
        }
    }

    /// The first trailer at or after the start: its position and kind.
    fn find_trailer(&self, buf: &[u8]) -> Option<(usize, FrameKind)> {
        match self.framing {
            Framing::Lf => memchr(b'\n', buf).map(|p| (p, FrameKind::Lf)),
            Framing::Nul => memchr(0, buf).map(|p| (p, FrameKind::Nul)),
            Framing::Auto | Framing::OctetCounting => {
                buf.iter().position(|&c| c == b'\n' || c == 0).map(|p| {
                    (
                        p,
                        if buf[p] == 0 {
                            FrameKind::Nul
                        } else {
                            FrameKind::Lf
                        },
                    )
                })
            }
        }
    }

    /// The trailer that ends the frame at the start of `buf`, searching `window` from
    /// `self.scanned` on, or `Err(resume)` when that cannot be known yet (multi-line mode, a
    /// trailer at the very end of the bytes so far): the next search resumes at `resume`.
    fn frame_end(
        &self,
        window: &[u8],
        buf: &[u8],
        eof: bool,
    ) -> Result<Option<(usize, FrameKind)>, usize> {
        let mut from = self.scanned.min(window.len());
        if !self.multiline || window.first() != Some(&b'<') {
            return Ok(self
                .find_trailer(&window[from..])
                .map(|(pos, kind)| (from + pos, kind)));
        }
        while let Some((pos, kind)) = self.find_trailer(&window[from..]) {
            let pos = from + pos;
            match buf.get(pos + 1) {
                None if eof => return Ok(Some((pos, kind))),
                None => return Err(pos),
                Some(b'<') => return Ok(Some((pos, kind))),
                Some(c) if self.framing == Framing::Auto && c.is_ascii_digit() => {
                    return Ok(Some((pos, kind)))
                }
                Some(_) => from = pos + 1,
            }
        }
        Ok(None)
    }

    fn non_transparent<'b>(&mut self, buf: &'b [u8], eof: bool, junk: bool) -> Step<'b> {
        let window = &buf[..buf.len().min(self.max_frame + 1)];
        let kind_of = |k: FrameKind| if junk { FrameKind::Junk } else { k };
        let end = match self.frame_end(window, buf, eof) {
            Ok(end) => end,
            Err(resume) => {
                self.scanned = resume;
                return Step::NeedMore;
            }
        };
        match end {
            Some((0, _)) => Step::Discard {
                consumed: 1,
                reason: DiscardReason::EmptyFrame,
            },
            Some((pos, kind)) => Step::Frame {
                consumed: pos + 1,
                frame: Frame {
                    bytes: &buf[..pos],
                    kind: kind_of(kind),
                    truncated: None,
                    incomplete_of: None,
                },
            },
            None if buf.len() > self.max_frame => {
                self.state = State::SkipToTrailer;
                Step::Frame {
                    consumed: self.max_frame,
                    frame: Frame {
                        bytes: &buf[..self.max_frame],
                        kind: kind_of(FrameKind::EndOfStream),
                        truncated: Some(None),
                        incomplete_of: None,
                    },
                }
            }
            None if eof => Step::Frame {
                consumed: buf.len(),
                frame: Frame {
                    bytes: buf,
                    kind: kind_of(FrameKind::EndOfStream),
                    truncated: None,
                    incomplete_of: None,
                },
            },
            None => {
                self.scanned = window.len();
                Step::NeedMore
            }
        }
    }
}

enum LenPrefix {
    NeedMore,
    NotALength,
    Len { len: u64, prefix: usize },
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&c| c == needle)
}

/// Splits a whole in-memory stream into frames, for tools and tests. Discarded bytes are
/// reported through `on_discard`.
pub fn split_stream<'b>(
    framing: Framing,
    max_frame: usize,
    stream: &'b [u8],
    on_discard: impl FnMut(DiscardReason, usize),
) -> Vec<Frame<'b>> {
    split_stream_with(FrameDecoder::new(framing, max_frame), stream, on_discard)
}

/// [`split_stream`] with a decoder configured by the caller (e.g. multi-line).
pub fn split_stream_with<'b>(
    mut decoder: FrameDecoder,
    stream: &'b [u8],
    mut on_discard: impl FnMut(DiscardReason, usize),
) -> Vec<Frame<'b>> {
    let mut frames = Vec::new();
    let mut pos = 0;
    loop {
        match decoder.decode(&stream[pos..], true) {
            Step::NeedMore => return frames,
            Step::Frame { consumed, frame } => {
                frames.push(frame);
                pos += consumed;
            }
            Step::Discard { consumed, reason } => {
                on_discard(reason, consumed);
                pos += consumed;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(framing: Framing, max: usize, input: &[u8]) -> Vec<(Vec<u8>, FrameKind)> {
        split_stream(framing, max, input, |_, _| {})
            .into_iter()
            .map(|f| (f.bytes.to_vec(), f.kind))
            .collect()
    }

    #[test]
    fn auto_detects_framing_per_frame() {
        let got = frames(Framing::Auto, 1024, b"5 <1>ab<2>c\n6 <3>1 x\x007 <4>xyz");
        assert_eq!(
            got,
            vec![
                (b"<1>ab".to_vec(), FrameKind::OctetCounted),
                (b"<2>c".to_vec(), FrameKind::Lf),
                (b"<3>1 x".to_vec(), FrameKind::OctetCounted),
                (b"<4>xyz".to_vec(), FrameKind::OctetCounted),
            ]
        );
    }

    #[test]
    fn partial_input_waits_for_more() {
        let mut d = FrameDecoder::new(Framing::Auto, 1024);
        assert_eq!(d.decode(b"12", false), Step::NeedMore);
        assert_eq!(d.decode(b"12 <1>", false), Step::NeedMore);
        assert_eq!(d.decode(b"<1>no trailer yet", false), Step::NeedMore);
    }

    #[test]
    fn oversize_octet_frame_is_truncated_and_the_rest_skipped() {
        let mut discarded = 0;
        let got = split_stream(Framing::Auto, 4, b"10 <1>4567890<2>x\n", |_, n| {
            discarded += n
        });
        assert_eq!(got[0].bytes, b"<1>4");
        assert_eq!(got[0].truncated, Some(Some(10)));
        assert_eq!(discarded, 6);
        assert_eq!(got[1].bytes, b"<2>x");
    }

    #[test]
    fn absurd_length_is_junk_and_the_stream_resynchronises() {
        let got = frames(Framing::OctetCounting, 1024, b"99999999999 <1>x\n5 <2>ab");
        assert_eq!(got[0], (b"99999999999 <1>x".to_vec(), FrameKind::Junk));
        assert_eq!(got[1], (b"<2>ab".to_vec(), FrameKind::OctetCounted));
    }

    #[test]
    fn oversize_line_is_truncated_up_to_its_trailer() {
        let got = split_stream(Framing::Lf, 3, b"abcdefg\nhi\n", |_, _| {});
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].bytes, got[0].truncated), (&b"abc"[..], Some(None)));
        assert_eq!(got[1].bytes, b"hi");
    }

    #[test]
    fn incomplete_octet_frame_at_end_of_stream_is_kept() {
        let got = split_stream(Framing::Auto, 1024, b"20 <1>short", |_, _| {});
        assert_eq!(got[0].bytes, b"<1>short");
        assert_eq!(got[0].incomplete_of, Some(20));
    }

    #[test]
    fn multiline_mode_keeps_continuation_lines() {
        let input = b"<2>1 - - - - - - A\nB\n<1>1 x\nC";
        let got = split_stream(Framing::Lf, 1024, input, |_, _| {});
        assert_eq!(got.len(), 4);
        let mut d = FrameDecoder::new(Framing::Lf, 1024).with_multiline(true);
        let Step::Frame { consumed, frame } = d.decode(input, false) else {
            panic!()
        };
        assert_eq!(frame.bytes, b"<2>1 - - - - - - A\nB");
        assert_eq!(d.decode(&input[consumed..], false), Step::NeedMore);
        let Step::Frame { frame, .. } = d.decode(&input[consumed..], true) else {
            panic!()
        };
        assert_eq!(frame.bytes, b"<1>1 x\nC");
    }

    #[test]
    fn empty_lines_are_discarded_with_a_reason() {
        let mut reasons = Vec::new();
        let got = split_stream(Framing::Lf, 1024, b"\n\na\n", |r, _| reasons.push(r));
        assert_eq!(got.len(), 1);
        assert_eq!(
            reasons,
            [DiscardReason::EmptyFrame, DiscardReason::EmptyFrame]
        );
    }

    /// A sender that dribbles a long frame costs one search of the new bytes per read, not of
    /// the whole frame again. Shown by breaking the contract on purpose: a trailer written into
    /// bytes already searched is not seen, so they were not searched again.
    #[test]
    fn bytes_already_searched_for_a_trailer_are_not_searched_again() {
        let mut d = FrameDecoder::new(Framing::Auto, 1024);
        let mut stream = b"<13>dribbled".to_vec();
        assert_eq!(d.decode(&stream, false), Step::NeedMore);
        stream[5] = b'\n';
        stream.extend_from_slice(b" on\n");
        let Step::Frame { consumed, frame } = d.decode(&stream, false) else {
            panic!("the trailer after the searched bytes ends the frame")
        };
        assert_eq!(
            (consumed, frame.bytes),
            (stream.len(), &stream[..stream.len() - 1])
        );
        // Consuming resets the search: the next frame is searched from its start.
        assert_eq!(
            d.decode(b"<1>a\nb", false),
            Step::Frame {
                consumed: 5,
                frame: Frame {
                    bytes: b"<1>a",
                    kind: FrameKind::Lf,
                    truncated: None,
                    incomplete_of: None
                },
            }
        );
    }

    /// In multi-line mode a trailer whose next byte has not arrived is looked at again once
    /// it has, while the continuation lines before it are not.
    #[test]
    fn multiline_mode_resumes_at_an_undecided_trailer() {
        let mut d = FrameDecoder::new(Framing::Lf, 1024).with_multiline(true);
        assert_eq!(d.decode(b"<1>a\nb\n", false), Step::NeedMore);
        let Step::Frame { frame, .. } = d.decode(b"<1>a\nb\n<2>c\n", false) else {
            panic!("the trailer before <2> ends the frame")
        };
        assert_eq!(frame.bytes, b"<1>a\nb");
    }
}
