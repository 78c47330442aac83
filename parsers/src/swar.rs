//! Digits read eight bytes at a time in one `u64` ("SIMD within a register").
//!
//! Timestamps are mostly fixed shapes of digits and separators (`2026-11-26`, `08:00:01`), and
//! checking and converting them byte by byte was the largest single part of an RFC 5424 parse
//! (callgrind: 325 of 1,798 instructions). Here a shape is checked with a handful of word
//! operations, and pairs of digits become numbers with one multiply.
//!
//! Bytes are loaded little-endian, so the first byte of the text is the lowest byte of the word.

/// One in every byte.
pub const ONES: u64 = 0x0101_0101_0101_0101;
/// The top bit of every byte.
pub const HIGH: u64 = 0x8080_8080_8080_8080;
/// `0` in every byte: XOR with it turns an ASCII digit into its value, 0 to 9, and every other
/// byte into 10 or more.
const ZEROS: u64 = 0x3030_3030_3030_3030;
/// Added to a byte of at most 9 it stays below 0x80; added to 10 or more it reaches 0x80.
const DIGIT_ADD: u8 = 0x76;
/// Added to a zero byte it stays below 0x80; added to anything else it reaches 0x80.
const EXACT_ADD: u8 = 0x7F;

/// The first eight bytes of `input` as a word, if it has eight.
#[inline(always)]
pub fn load(input: &[u8]) -> Option<u64> {
    input.first_chunk::<8>().map(|b| u64::from_le_bytes(*b))
}

/// Whether each byte of `x` is at most its limit: the limit is 9 where `add` holds
/// [`DIGIT_ADD`] and 0 where it holds [`EXACT_ADD`]. A byte whose sum carries into the next
/// has its own top bit set, so a carry can only spoil an answer that is already "no".
#[inline(always)]
fn within(x: u64, add: u64) -> u64 {
    (x | x.wrapping_add(add)) & HIGH
}

/// Eight bytes of fixed shape: `0` in the pattern stands for any ASCII digit, `?` for any byte
/// at all, every other byte for itself.
pub struct Shape {
    template: u64,
    add: u64,
    /// Zero in the bytes that may hold anything.
    keep: u64,
}

impl Shape {
    pub const fn new(pattern: &[u8; 8]) -> Shape {
        let mut template = [0u8; 8];
        let mut add = [0u8; 8];
        let mut keep = [0xFFu8; 8];
        let mut i = 0;
        while i < 8 {
            (template[i], add[i]) = match pattern[i] {
                b'0' => (b'0', DIGIT_ADD),
                b'?' => {
                    keep[i] = 0;
                    (0, 0)
                }
                b => (b, EXACT_ADD),
            };
            i += 1;
        }
        Shape {
            template: u64::from_le_bytes(template),
            add: u64::from_le_bytes(add),
            keep: u64::from_le_bytes(keep),
        }
    }

    /// The digits' values, each in its own byte (other bytes zero), if `word` has this shape.
    #[inline(always)]
    pub fn digits(&self, word: u64) -> Option<u64> {
        let x = (word ^ self.template) & self.keep;
        (within(x, self.add) == 0).then_some(x)
    }
}

/// Byte `i` of the answer is `10 * x[i] + x[i + 1]`: the two-digit number starting at byte `i`,
/// for the digit values [`Shape::digits`] gives. No byte carries (at most 9 · 10 + 9).
#[inline(always)]
pub fn pairs(x: u64) -> u64 {
    x * 10 + (x >> 8)
}

/// Byte `i` of `w`.
#[inline(always)]
pub fn byte(w: u64, i: u32) -> u32 {
    u32::from((w >> (8 * i)) as u8)
}

/// How many ASCII digits `word` starts with (0 to 8), and the values of all its bytes as
/// [`Shape::digits`] would give them (only the first that many are digits).
#[inline(always)]
pub fn leading_digits(word: u64) -> (usize, u64) {
    let x = word ^ ZEROS;
    let bad = within(x, u64::from_le_bytes([DIGIT_ADD; 8]));
    // Bytes before the first bad one cannot have carried into it.
    ((bad.trailing_zeros() / 8) as usize, x)
}

/// The number written by the first `n` (1 to 8) digit values of `x`, the first the most
/// significant.
#[inline(always)]
pub fn number(x: u64, n: usize) -> u32 {
    debug_assert!((1..=8).contains(&n));
    // Move the n digits to the top: the bytes after them fall off the end, and the zero bytes
    // shifted in below are leading zeros.
    let v = x << (8 * (8 - n));
    // Pairs in 16-bit lanes, then fours in 32-bit lanes, then all eight.
    let v = pairs(v) & 0x00FF_00FF_00FF_00FF;
    let v = (v.wrapping_mul(1 + (100 << 16)) >> 16) & 0x0000_FFFF_0000_FFFF;
    (v.wrapping_mul(1 + (10_000 << 32)) >> 32) as u32
}

/// The top bit of each byte of `word` below `n` (1 to 128), the classic "has a byte less than
/// n" trick: exact as a yes/no for the whole word, and its lowest mark is always a true one.
/// A byte below `n` borrows from the byte above it, which may then be marked too, so marks
/// after the first are not to be trusted.
#[inline(always)]
pub fn below(word: u64, n: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH
}

/// Where the first byte of `word` outside printable US-ASCII (33 to 126, RFC 5424's
/// PRINTUSASCII) is, from 0 to 7, or 8 if every byte is printable.
#[inline(always)]
pub fn first_unprintable(word: u64) -> usize {
    // 127 and up: the top bit is set, or adding one sets it (only 0xFF carries, and it is
    // already marked).
    let high = (word | word.wrapping_add(ONES)) & HIGH;
    (below(word, 33) | high).trailing_zeros() as usize / 8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &[u8; 8]) -> u64 {
        u64::from_le_bytes(*text)
    }

    #[test]
    fn a_shape_takes_digits_where_it_has_zeros_and_itself_elsewhere() {
        let date = Shape::new(b"0000-00-");
        let x = date.digits(word(b"2026-11-")).unwrap();
        let p = pairs(x);
        assert_eq!((byte(p, 0), byte(p, 2), byte(p, 5)), (20, 26, 11));
        for bad in [
            b"2026/11-",
            b"2026-11x",
            b"202a-11-",
            b"2026-1:-",
            b"/026-11-",
            b"2026-11\xad",
        ] {
            assert_eq!(date.digits(word(bad)), None, "{bad:?}");
        }
    }

    #[test]
    fn every_byte_value_in_every_position_is_judged_as_a_byte_by_byte_check_would() {
        for (pattern, good) in [(b"00:00:00", *b"23:59:58"), (b"?00:00??", *b"+01:30 x")] {
            let shape = Shape::new(pattern);
            for at in 0..8 {
                for b in 0..=255u8 {
                    let mut text = good;
                    text[at] = b;
                    let expected = text.iter().zip(pattern).all(|(&c, &p)| match p {
                        b'0' => c.is_ascii_digit(),
                        b'?' => true,
                        _ => c == p,
                    });
                    assert_eq!(shape.digits(word(&text)).is_some(), expected, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn leading_digits_are_counted_and_read() {
        for text in [
            b"12345678",
            b"1234567Z",
            b"123456+0",
            b"1 345678",
            b"Z1234567",
            b"0000001Z",
            b"9\xff999999",
            b"99999999",
        ] {
            let n = text.iter().take_while(|c| c.is_ascii_digit()).count();
            let (got, x) = leading_digits(word(text));
            assert_eq!(got, n, "{text:?}");
            if n > 0 {
                let expected: u32 = std::str::from_utf8(&text[..n]).unwrap().parse().unwrap();
                assert_eq!(number(x, n), expected, "{text:?}");
            }
        }
    }

    #[test]
    fn the_first_unprintable_byte_is_found_wherever_it_is() {
        for at in 0..8 {
            for b in 0..=255u8 {
                for before in [b'!', b'~', b'a'] {
                    let mut text = [before; 8];
                    text[at] = b;
                    let expected = text
                        .iter()
                        .position(|c| !(33..=126).contains(c))
                        .unwrap_or(8);
                    assert_eq!(first_unprintable(word(&text)), expected, "{text:?}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn numbers_of_any_length_read_as_text_parsing_does(value in 0u32..100_000_000, n in 1usize..=8, tail in proptest::collection::vec(proptest::num::u8::ANY, 8)) {
            let digits = format!("{value:08}");
            let mut text = [0u8; 8];
            text[..n].copy_from_slice(&digits.as_bytes()[8 - n..]);
            text[n..].copy_from_slice(&tail[n..]);
            let (count, x) = leading_digits(word(&text));
            let expected_count = text.iter().take_while(|c| c.is_ascii_digit()).count();
            proptest::prop_assert_eq!(count, expected_count);
            let expected: u32 = digits[8 - n..].parse().unwrap();
            proptest::prop_assert_eq!(number(x, n), expected);
        }
    }
}
