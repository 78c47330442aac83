//! The frame decoder fed in arbitrary chunk sizes: no panic, no frame over the limit, and the
//! same frames whether the stream arrives whole or piece by piece.
#![no_main]

use auditrelay_parsers::framing::{split_stream_with, FrameDecoder, Framing, Step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let framing = [
        Framing::Auto,
        Framing::OctetCounting,
        Framing::Lf,
        Framing::Nul,
    ][usize::from(control & 3)];
    let multiline = control & 4 != 0;
    let max = 1 + usize::from(control >> 3) * 4;
    let chunk = 1 + usize::from(control % 7);

    let whole: Vec<Vec<u8>> = split_stream_with(
        FrameDecoder::new(framing, max).with_multiline(multiline),
        stream,
        |_, _| {},
    )
    .iter()
    .map(|f| f.bytes.to_vec())
    .collect();

    // Feed the same stream `chunk` bytes at a time.
    let mut decoder = FrameDecoder::new(framing, max).with_multiline(multiline);
    let mut pieces = Vec::new();
    let (mut start, mut available) = (0, 0);
    loop {
        let eof = available == stream.len();
        match decoder.decode(&stream[start..available], eof) {
            Step::Frame { consumed, frame } => {
                assert!(frame.bytes.len() <= max);
                pieces.push(frame.bytes.to_vec());
                start += consumed;
            }
            Step::Discard { consumed, .. } => start += consumed,
            Step::NeedMore if eof => break,
            Step::NeedMore => available = (available + chunk).min(stream.len()),
        }
    }
    assert_eq!(whole, pieces);
});
