//! Calendar arithmetic, RFC 3339 (strict, for RFC 5424) and the legacy timestamps that RFC 3164
//! devices send, with year and zone inference.
//!
//! Hand-written instead of pulling in a date crate: the parser needs only proleptic Gregorian
//! day counts and fixed offsets, and keeping it here keeps the crate small and allocation-free.

use std::fmt::{self, Write};

use crate::swar::{self, Shape};

/// `hh:mm:ss`, the clock of every timestamp shape, from one word: hour, minute and second
/// (not yet checked against the clock).
fn clock_word(word: u64) -> Option<[u32; 3]> {
    const CLOCK: Shape = Shape::new(b"00:00:00");
    let p = swar::pairs(CLOCK.digits(word)?);
    Some([swar::byte(p, 0), swar::byte(p, 3), swar::byte(p, 6)])
}

/// A wall-clock time with a known UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// Sub-second part in nanoseconds.
    pub nanos: u32,
    /// How many fractional digits to print (as written, or 6 for receive times).
    pub frac_digits: u8,
    /// Offset from UTC in minutes (east positive).
    pub offset_minutes: i16,
}

/// Whether `year` is a Gregorian leap year.
pub fn is_leap_year(year: i32) -> bool {
    // Three years in four are settled by the first test alone.
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1–12) of `year`.
pub fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day)
}

impl DateTime {
    /// The UTC time of a count of microseconds since the Unix epoch, printed with 6 digits.
    pub fn from_unix_micros(micros: i64) -> DateTime {
        let secs = micros.div_euclid(1_000_000);
        let sub = micros.rem_euclid(1_000_000) as u32;
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        DateTime {
            year,
            month,
            day,
            hour: (sod / 3600) as u8,
            minute: (sod / 60 % 60) as u8,
            second: (sod % 60) as u8,
            nanos: sub * 1000,
            frac_digits: 6,
            offset_minutes: 0,
        }
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400 + self.seconds_into_day()
    }

    /// Seconds since its midnight, minus its offset: what a day count is added to.
    fn seconds_into_day(&self) -> i64 {
        i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second)
            - i64::from(self.offset_minutes) * 60
    }

    /// Seconds since the start of its year in its own offset's terms, minus the offset: the
    /// difference of two of these in one year is the difference of their `unix_seconds`.
    fn seconds_into_year(&self) -> i64 {
        /// Days before each month in a common year.
        const BEFORE: [u16; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let leap_day = i64::from(self.month > 2 && is_leap_year(self.year));
        let day = i64::from(BEFORE[usize::from(self.month.clamp(1, 12) - 1)])
            + leap_day
            + i64::from(self.day);
        day * 86_400 + self.seconds_into_day()
    }

    /// Appends the RFC 3339 form: `Z` for UTC, otherwise `±HH:MM`.
    pub fn write_rfc3339(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }

    /// The RFC 3339 form as a new string.
    pub fn to_rfc3339(&self) -> String {
        let mut s = String::with_capacity(32);
        self.write_rfc3339(&mut s);
        s
    }
}

/// RFC 3339, keeping the fractional digits as written: `Z` for UTC, otherwise `±HH:MM`.
impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Vec::with_capacity(40);
        self.write_rfc3339_bytes(&mut text);
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl DateTime {
    /// Appends the RFC 3339 form as bytes. Every record's `received_at` goes through here, so
    /// it writes digits itself rather than through `core::fmt` (several times slower), into a
    /// buffer on the stack that goes out in one fixed-size copy: a push per piece was two
    /// dozen capacity checks, half the cost (callgrind).
    pub fn write_rfc3339_bytes(&self, out: &mut Vec<u8>) {
        /// The longest form: four-digit year, nine fractional digits and an offset.
        const LONGEST: usize = 35;
        let Some(year) = u16::try_from(self.year).ok().filter(|y| *y <= 9999) else {
            // Outside RFC 3339's four digits: printed as a number, sign included.
            out.extend_from_slice(format!("{:04}", self.year).as_bytes());
            let mut rest = [0u8; LONGEST];
            let n = self.write_after_year(&mut rest);
            out.extend_from_slice(&rest[..n]);
            return;
        };
        let mut text = [0u8; 4 + LONGEST];
        put_two(&mut text[0..2], (year / 100) as u8);
        put_two(&mut text[2..4], (year % 100) as u8);
        let n = 4 + self.write_after_year(&mut text[4..]);
        out.extend_from_slice(&text);
        out.truncate(out.len() - (text.len() - n));
    }

    /// Writes everything after the year (`-MM-DDThh:mm:ss[.f]Z|±hh:mm`) into `to`, which
    /// holds at least 31 bytes; returns how many it wrote.
    fn write_after_year(&self, to: &mut [u8]) -> usize {
        let to = &mut to[..31];
        to[0] = b'-';
        put_two(&mut to[1..3], self.month);
        to[3] = b'-';
        put_two(&mut to[4..6], self.day);
        to[6] = b'T';
        put_two(&mut to[7..9], self.hour);
        to[9] = b':';
        put_two(&mut to[10..12], self.minute);
        to[12] = b':';
        put_two(&mut to[13..15], self.second);
        let mut n = 15;
        if self.frac_digits > 0 {
            // All nine digits (two at a time, the first alone), then cut to those written.
            let digits = usize::from(self.frac_digits.min(9));
            let nanos = self.nanos % 1_000_000_000;
            to[n] = b'.';
            to[n + 1] = b'0' + (nanos / 100_000_000) as u8;
            let mut rest = nanos % 100_000_000;
            for (at, scale) in [
                (n + 2, 1_000_000),
                (n + 4, 10_000),
                (n + 6, 100),
                (n + 8, 1),
            ] {
                put_two(&mut to[at..at + 2], (rest / scale) as u8);
                rest %= scale;
            }
            n += 1 + digits;
        }
        if self.offset_minutes == 0 {
            to[n] = b'Z';
            n + 1
        } else {
            to[n] = if self.offset_minutes < 0 { b'-' } else { b'+' };
            let abs = self.offset_minutes.unsigned_abs();
            put_two(&mut to[n + 1..n + 3], (abs / 60) as u8);
            to[n + 3] = b':';
            put_two(&mut to[n + 4..n + 6], (abs % 60) as u8);
            n + 6
        }
    }
}

/// Two decimal digits of `v` (taken modulo 100) into `to`.
fn put_two(to: &mut [u8], v: u8) {
    to[..2].copy_from_slice(&crate::json::digit_pair(v));
}

/// Reads exactly `n` ASCII digits as a number.
fn digits(input: &[u8], n: usize) -> Option<(u32, &[u8])> {
    if n == 2 {
        return two_digits(input);
    }
    if input.len() < n || !input[..n].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = input[..n]
        .iter()
        .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
    Some((v, &input[n..]))
}

/// Two ASCII digits, the width of every field but the year: a byte that is not a digit wraps
/// to 10 or more when `0` is subtracted, so one comparison per byte checks it.
fn two_digits(input: &[u8]) -> Option<(u32, &[u8])> {
    let &[a, b, ..] = input else {
        return None;
    };
    let (a, b) = (a.wrapping_sub(b'0'), b.wrapping_sub(b'0'));
    (a < 10 && b < 10).then(|| (u32::from(a) * 10 + u32::from(b), &input[2..]))
}

fn byte(input: &[u8], b: u8) -> Option<&[u8]> {
    input.strip_prefix(&[b])
}

/// Nanoseconds per unit of a fraction with as many digits as the index.
const SCALE: [u32; 10] = [
    1_000_000_000,
    100_000_000,
    10_000_000,
    1_000_000,
    100_000,
    10_000,
    1_000,
    100,
    10,
    1,
];

/// Reads 1 to `max` fractional digits after a `.`; returns nanoseconds and the digit count.
fn fraction(input: &[u8], max: usize) -> Option<(u32, u8, &[u8])> {
    // Up to seven digits followed by something else are counted and read as one word; longer
    // runs, and fractions at the very end of the input, go byte by byte.
    if let Some(word) = swar::load(input) {
        let (n, x) = swar::leading_digits(word);
        if n < 8 {
            if n == 0 || n > max {
                return None;
            }
            return Some((swar::number(x, n) * SCALE[n], n as u8, &input[n..]));
        }
    }
    fraction_bytewise(input, max)
}

/// [`fraction`] a byte at a time.
fn fraction_bytewise(input: &[u8], max: usize) -> Option<(u32, u8, &[u8])> {
    // One pass reads and counts the digits (an iterator chain counting them first and a fold
    // reading them after cost twice as much); beyond nine, digits only count.
    let (mut value, mut n) = (0u32, 0);
    while let Some(d) = input
        .get(n)
        .map(|c| c.wrapping_sub(b'0'))
        .filter(|d| *d <= 9)
    {
        if n < 9 {
            value = value * 10 + u32::from(d);
        }
        n += 1;
        if n > max {
            return None;
        }
    }
    if n == 0 {
        return None;
    }
    Some((value * SCALE[n.min(9)], n as u8, &input[n..]))
}

fn valid_time(hour: u32, minute: u32, second: u32) -> bool {
    hour < 24 && minute < 60 && second < 60
}

fn valid_date(year: i32, month: u32, day: u32) -> bool {
    (1..=12).contains(&month) && day >= 1 && day <= u32::from(days_in_month(year, month as u8))
}

/// `YYYY-MM-DD` `t` `hh:mm:ss` at the start of `input`, where `separator(t)` holds: year,
/// month, day, hour, minute and second (not yet checked against the calendar or the clock),
/// and the rest. The date's first eight bytes and the clock are each checked and read as one
/// word (`swar`), where a 19-byte slice pattern checked each digit: with the word readers for
/// the fraction too, an RFC 5424 parse went from 1,798 to 1,713 instructions
/// (bench/parse-instructions.sh).
fn date_and_clock(input: &[u8], separator: impl Fn(u8) -> bool) -> Option<([u32; 6], &[u8])> {
    const DATE: Shape = Shape::new(b"0000-00-");
    let (head, rest) = input.split_first_chunk::<19>()?;
    let date = swar::pairs(DATE.digits(swar::load(head)?)?);
    let [hour, minute, second] = clock_word(swar::load(&head[11..])?)?;
    let (d0, d1) = (head[8].wrapping_sub(b'0'), head[9].wrapping_sub(b'0'));
    if d0 > 9 || d1 > 9 || !separator(head[10]) {
        return None;
    }
    Some((
        [
            swar::byte(date, 0) * 100 + swar::byte(date, 2),
            swar::byte(date, 5),
            u32::from(d0 * 10 + d1),
            hour,
            minute,
            second,
        ],
        rest,
    ))
}

/// Parses an RFC 5424 TIMESTAMP (RFC 5424 §6.2.3): `FULL-DATE "T" FULL-TIME`, upper-case `T`
/// and `Z`, at most 6 fractional digits, no leap second, real calendar dates, offset hours ≤ 23.
/// Returns the time and the rest of the input, or `None` if the text is not such a timestamp.
pub fn parse_rfc3339_strict(input: &[u8]) -> Option<(DateTime, &[u8])> {
    let ([year, month, day, hour, minute, second], mut r) = date_and_clock(input, |t| t == b'T')?;
    let (mut nanos, mut frac_digits) = (0, 0);
    if let Some(after_dot) = byte(r, b'.') {
        let (n, d, rest) = fraction(after_dot, 6)?;
        (nanos, frac_digits, r) = (n, d, rest);
    }
    let (offset_minutes, r) = match r.first()? {
        b'Z' => (0i16, &r[1..]),
        sign @ (b'+' | b'-') => {
            // `±hh:mm` as one word when eight bytes are there (about 35 instructions less).
            const OFFSET: Shape = Shape::new(b"?00:00??");
            let (oh, om, r2) = match swar::load(r) {
                Some(word) => {
                    let p = swar::pairs(OFFSET.digits(word)?);
                    (swar::byte(p, 1), swar::byte(p, 4), &r[6..])
                }
                None => {
                    let (oh, r2) = digits(&r[1..], 2)?;
                    let (om, r2) = digits(byte(r2, b':')?, 2)?;
                    (oh, om, r2)
                }
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let off = (oh * 60 + om) as i16;
            (if *sign == b'-' { -off } else { off }, r2)
        }
        _ => return None,
    };
    let year = year as i32;
    if !valid_date(year, month, day) || !valid_time(hour, minute, second) {
        return None;
    }
    Some((
        DateTime {
            year,
            month: month as u8,
            day: day as u8,
            hour: hour as u8,
            minute: minute as u8,
            second: second as u8,
            nanos,
            frac_digits,
            offset_minutes,
        },
        r,
    ))
}

/// A timestamp as legacy devices write it: the year and the zone may be missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyTime {
    pub year: Option<i32>,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub nanos: u32,
    pub frac_digits: u8,
    /// The offset, when the text carried one (`Z`, `+01:00`, `UTC`…).
    pub offset_minutes: Option<i16>,
}

impl LegacyTime {
    /// This time in `year` at `offset_minutes`, whatever its own year and zone.
    fn in_year(&self, year: i32, offset_minutes: i16) -> DateTime {
        DateTime {
            year,
            month: self.month,
            day: self.day,
            hour: self.hour,
            minute: self.minute,
            second: self.second,
            nanos: self.nanos,
            frac_digits: self.frac_digits,
            offset_minutes,
        }
    }
}

/// Three bytes with bit 5 set, as one number. For a lower-case letter `l`, `b | 0x20 == l` holds
/// only for `b == l` and its upper-case form, so this folds case for month names and nothing
/// else can match one.
const fn fold3(b: [u8; 3]) -> u32 {
    u32::from_le_bytes([b[0] | 0x20, b[1] | 0x20, b[2] | 0x20, 0])
}

/// Month names folded, in order.
const MONTHS: [u32; 12] = [
    fold3(*b"jan"),
    fold3(*b"feb"),
    fold3(*b"mar"),
    fold3(*b"apr"),
    fold3(*b"may"),
    fold3(*b"jun"),
    fold3(*b"jul"),
    fold3(*b"aug"),
    fold3(*b"sep"),
    fold3(*b"oct"),
    fold3(*b"nov"),
    fold3(*b"dec"),
];

/// A month name in any case. One comparison of a number per month replaced three byte
/// comparisons per month, a tenth of a Cisco message's parse.
fn month_abbrev(input: &[u8]) -> Option<(u8, &[u8])> {
    let &[a, b, c, ..] = input else {
        return None;
    };
    let folded = fold3([a, b, c]);
    let month = MONTHS.iter().position(|&m| m == folded)?;
    Some((month as u8 + 1, &input[3..]))
}

/// The time of day of a legacy timestamp.
struct Clock {
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    frac_digits: u8,
}

/// `hh:mm:ss[.fraction]`.
fn clock(input: &[u8]) -> Option<(Clock, &[u8])> {
    // As one word when eight bytes are there; the byte-by-byte reader only at the very end of
    // the input (on eight bytes it accepts exactly what the word reader does).
    let ([h, m, s], r) = match swar::load(input) {
        Some(word) => (clock_word(word)?, &input[8..]),
        None => {
            let (h, r) = digits(input, 2)?;
            let (m, r) = digits(byte(r, b':')?, 2)?;
            let (s, r) = digits(byte(r, b':')?, 2)?;
            ([h, m, s], r)
        }
    };
    clock_after_seconds(h, m, s, r)
}

/// A clock read as far as its seconds, checked, with the optional `.fraction` that `rest`
/// starts with (a `.` without digits is left in `rest`). Inlined: called, it cost each legacy
/// parse 35 instructions more (bench/parse-instructions.sh).
#[inline(always)]
fn clock_after_seconds(hour: u32, minute: u32, second: u32, rest: &[u8]) -> Option<(Clock, &[u8])> {
    if !valid_time(hour, minute, second) {
        return None;
    }
    let (nanos, frac_digits, rest) = byte(rest, b'.')
        .and_then(|r| fraction(r, 9))
        .unwrap_or((0, 0, rest));
    Some((
        Clock {
            hour,
            minute,
            second,
            nanos,
            frac_digits,
        },
        rest,
    ))
}

/// A day of month written as `dd`, ` d` (space-padded) or `d`.
fn day_of_month(input: &[u8]) -> Option<(u32, &[u8])> {
    let input = input.strip_prefix(b" ").unwrap_or(input);
    let n = input
        .iter()
        .take(3)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if !(1..=2).contains(&n) {
        return None;
    }
    let (d, r) = digits(input, n)?;
    (1..=31).contains(&d).then_some((d, r))
}

/// An optional zone after a legacy timestamp: ` UTC`, ` GMT`, ` Z`, ` +hh:mm`, ` +hhmm`.
/// Other abbreviations (`CET`, `PST`…) are ambiguous worldwide, so they are not taken as an
/// offset and stay in the message text; the per-source zone applies instead.
fn legacy_zone(input: &[u8]) -> Option<(i16, &[u8])> {
    let r = input.strip_prefix(b" ")?;
    for name in [&b"UTC"[..], b"GMT", b"Z"] {
        if let Some(rest) = r.strip_prefix(name) {
            if rest.first().is_none_or(|c| !c.is_ascii_alphanumeric()) {
                return Some((0, rest));
            }
        }
    }
    numeric_offset(r)
}

/// `±hh:mm` or `±hhmm`.
fn numeric_offset(r: &[u8]) -> Option<(i16, &[u8])> {
    let sign = *r.first()?;
    if sign != b'+' && sign != b'-' {
        return None;
    }
    let (h, r2) = digits(&r[1..], 2)?;
    let (m, r2) = match byte(r2, b':') {
        Some(r3) => digits(r3, 2)?,
        None => digits(r2, 2)?,
    };
    if h > 23 || m > 59 {
        return None;
    }
    let off = (h * 60 + m) as i16;
    Some((if sign == b'-' { -off } else { off }, r2))
}

/// BSD form `Mmm dd hh:mm:ss`, also with a year before the clock (`Mmm dd yyyy hh:mm:ss`,
/// Cisco ASA), fractional seconds (Cisco `msec`) and an optional zone.
pub fn parse_bsd(input: &[u8]) -> Option<(LegacyTime, &[u8])> {
    let (month, r) = month_abbrev(input)?;
    let r = byte(r, b' ')?;
    let (day, r) = day_of_month(r)?;
    let r = byte(r, b' ')?;
    let (year, r) = match digits(r, 4).and_then(|(y, rest)| Some((y, byte(rest, b' ')?))) {
        Some((y, rest)) => (Some(y as i32), rest),
        None => (None, r),
    };
    let (c, r) = clock(r)?;
    let (offset_minutes, r) = match legacy_zone(r) {
        Some((off, rest)) => (Some(off), rest),
        None => (None, r),
    };
    if let Some(y) = year {
        if !valid_date(y, u32::from(month), day) {
            return None;
        }
    }
    Some((
        LegacyTime {
            year,
            month,
            day: day as u8,
            hour: c.hour as u8,
            minute: c.minute as u8,
            second: c.second as u8,
            nanos: c.nanos,
            frac_digits: c.frac_digits,
            offset_minutes,
        },
        r,
    ))
}

/// NX-OS form `yyyy Mmm dd hh:mm:ss[.fff][ zone]`.
pub fn parse_year_first(input: &[u8]) -> Option<(LegacyTime, &[u8])> {
    let (year, r) = digits(input, 4)?;
    let r = byte(r, b' ')?;
    let (mut t, r) = parse_bsd(r)?;
    if t.year.is_some() || !valid_date(year as i32, u32::from(t.month), u32::from(t.day)) {
        return None;
    }
    t.year = Some(year as i32);
    Some((t, r))
}

/// ISO 8601 as legacy senders write it (rsyslog's `RFC3339` template, Juniper, appliances):
/// `yyyy-mm-dd[T ]hh:mm:ss[.f{1,9}][Z|±hh:mm|±hhmm]`, `T`/`Z` in either case.
pub fn parse_iso8601(input: &[u8]) -> Option<(LegacyTime, &[u8])> {
    let ([year, month, day, hour, minute, second], r) =
        date_and_clock(input, |t| matches!(t, b'T' | b't' | b' '))?;
    let (c, r) = clock_after_seconds(hour, minute, second, r)?;
    let (offset_minutes, r) = match r.first() {
        Some(b'Z' | b'z') => (Some(0), &r[1..]),
        Some(b'+' | b'-') => match numeric_offset(r) {
            Some((off, rest)) => (Some(off), rest),
            None => (None, r),
        },
        _ => (None, r),
    };
    let year = year as i32;
    if !valid_date(year, month, day) {
        return None;
    }
    Some((
        LegacyTime {
            year: Some(year),
            month: month as u8,
            day: day as u8,
            hour: c.hour as u8,
            minute: c.minute as u8,
            second: c.second as u8,
            nanos: c.nanos,
            frac_digits: c.frac_digits,
            offset_minutes,
        },
        r,
    ))
}

/// Completes a legacy time: a missing zone becomes `default_offset_minutes`, a missing year
/// becomes the one that puts the event closest to `received` (so a December message received
/// on 1 January lands in the old year). Returns the time and whether anything was inferred.
pub fn resolve(
    t: &LegacyTime,
    received: &DateTime,
    default_offset_minutes: i16,
) -> (DateTime, bool) {
    let offset = t.offset_minutes.unwrap_or(default_offset_minutes);
    let inferred = t.year.is_none() || t.offset_minutes.is_none();
    let build = |year: i32| t.in_year(year, offset);
    if let Some(year) = t.year {
        return (build(year), inferred);
    }
    // The received year is right when the event lands within 182 days of the receive time: a
    // neighbouring year's date is then at least 183 days away (a year has 365 or 366). Only
    // beyond that are the neighbouring years measured. (With 183 days here, an event 183 days
    // away kept the received year although the other side was 182 days away.)
    const HALF_YEAR: i64 = 182 * 86_400;
    if t.day <= days_in_month(received.year, t.month) {
        let same = build(received.year);
        // Four months apart or less, the two times are at most five months of days (153) and
        // two offsets apart, well within half a year: no need to measure.
        if t.month.abs_diff(received.month) <= 4 {
            return (same, true);
        }
        // Within one year, the distance needs no day count since 1970.
        if (same.seconds_into_year() - received.seconds_into_year()).abs() <= HALF_YEAR {
            return (same, true);
        }
    }
    let now = received.unix_seconds();
    let closest = |day: u8| {
        [received.year - 1, received.year, received.year + 1]
            .into_iter()
            .filter(|&y| day <= days_in_month(y, t.month))
            .map(|year| DateTime { day, ..build(year) })
            .min_by_key(|dt| (dt.unix_seconds() - now).abs())
    };
    // 29 February fits none of three consecutive years when none is a leap year (2025 to
    // 2027, say): the device's clock is wrong, and its 28 February in the closest year is the
    // nearest real date.
    let dt = closest(t.day)
        .or_else(|| closest(28))
        .unwrap_or_else(|| DateTime {
            day: 28,
            ..build(received.year)
        });
    (dt, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reader `fraction` replaced: count the digits, then fold them.
    fn fraction_reference(input: &[u8], max: usize) -> Option<(u32, u8, &[u8])> {
        let n = input
            .iter()
            .take(max + 1)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if n == 0 || n > max {
            return None;
        }
        let kept = n.min(9);
        let value = input[..kept]
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
        Some((value * SCALE[kept], n as u8, &input[n..]))
    }

    #[test]
    fn fractions_read_as_before() {
        let digits = b"9876543210987";
        for len in 0..=digits.len() {
            for tail in [&b""[..], b"Z", b"+01:00", b"/"] {
                let input = [&digits[..len], tail].concat();
                for max in [6, 9, 12] {
                    assert_eq!(
                        fraction(&input, max),
                        fraction_reference(&input, max),
                        "{input:?} {max}"
                    );
                }
            }
        }
    }

    /// The date and clock reader before it read words: a slice pattern and a check per digit.
    fn date_and_clock_reference(
        input: &[u8],
        separator: impl Fn(u8) -> bool,
    ) -> Option<([u32; 6], &[u8])> {
        let [y0, y1, y2, y3, b'-', mo0, mo1, b'-', d0, d1, t, h0, h1, b':', mi0, mi1, b':', s0, s1, ref rest @ ..] =
            *input
        else {
            return None;
        };
        let d = [y0, y1, y2, y3, mo0, mo1, d0, d1, h0, h1, mi0, mi1, s0, s1]
            .map(|c| c.wrapping_sub(b'0'));
        if !separator(t) || d.iter().any(|&d| d > 9) {
            return None;
        }
        let n = |i: usize| u32::from(d[i]) * 10 + u32::from(d[i + 1]);
        Some(([n(0) * 100 + n(2), n(4), n(6), n(8), n(10), n(12)], rest))
    }

    #[test]
    fn dates_and_clocks_read_as_the_byte_by_byte_reader_did() {
        let good = *b"2026-11-26T08:00:01.5Z";
        let separator = |t| matches!(t, b'T' | b' ');
        for at in 0..good.len() {
            for b in 0..=255u8 {
                let mut text = good;
                text[at] = b;
                for len in [text.len(), 19, 18] {
                    let input = &text[..len];
                    assert_eq!(
                        date_and_clock(input, separator),
                        date_and_clock_reference(input, separator),
                        "{input:?}"
                    );
                }
                // The legacy clock, read as a word when eight bytes are there and byte by byte
                // when they are not.
                let clock_text = &text[11..];
                let reference = (|| {
                    let (h, r) = digits(clock_text, 2)?;
                    let (m, r) = digits(byte(r, b':')?, 2)?;
                    let (s, r) = digits(byte(r, b':')?, 2)?;
                    Some((h, m, s, r))
                })()
                .filter(|&(h, m, s, _)| valid_time(h, m, s));
                let got = clock(clock_text);
                assert_eq!(
                    got.as_ref().map(|(c, _)| (c.hour, c.minute, c.second)),
                    reference.map(|(h, m, s, _)| (h, m, s)),
                    "{clock_text:?}"
                );
            }
        }
    }

    #[test]
    fn civil_round_trips_across_eras() {
        for days in [-800_000i64, -1, 0, 1, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn offsets_read_as_a_word_answer_as_offsets_read_byte_by_byte() {
        // At the end of the input the offset is read byte by byte; with more after it, as one
        // word. Every byte of it, changed to every value, is judged the same both ways.
        let good = *b"2026-11-26T08:00:01.5-09:30";
        for at in 21..good.len() {
            for b in 0..=255u8 {
                let mut text = good;
                text[at] = b;
                let alone = parse_rfc3339_strict(&text);
                let followed = [&text[..], b" host"].concat();
                let in_a_message = parse_rfc3339_strict(&followed);
                assert_eq!(
                    alone.map(|(t, rest)| (t, rest.len())),
                    in_a_message.map(|(t, rest)| (t, rest.len() - 5)),
                    "{text:?}"
                );
            }
        }
    }

    #[test]
    fn strict_rfc3339_checks_the_calendar_and_the_grammar() {
        assert!(parse_rfc3339_strict(b"2003-10-11T22:14:15.003Z").is_some());
        assert!(parse_rfc3339_strict(b"2020-02-29T00:00:00+23:59").is_some());
        assert!(parse_rfc3339_strict(b"2018-02-29T00:00:00Z").is_none());
        assert!(parse_rfc3339_strict(b"2003-09-31T00:00:00Z").is_none());
        assert!(parse_rfc3339_strict(b"2003-10-11t22:14:15Z").is_none());
        assert!(parse_rfc3339_strict(b"2003-10-11T22:14:15.0000001Z").is_none());
        assert!(parse_rfc3339_strict(b"2003-10-11T23:59:60Z").is_none());
        assert!(parse_rfc3339_strict(b"2003-10-11T22:14:15-24:00").is_none());
    }

    #[test]
    fn year_is_inferred_closest_to_the_receive_time() {
        let (t, _) = parse_bsd(b"Dec 31 23:59:58 host").unwrap();
        let received = DateTime::from_unix_micros(days_from_civil(2027, 1, 1) * 86_400_000_000);
        let (dt, inferred) = resolve(&t, &received, 0);
        assert!(inferred);
        assert_eq!(dt.year, 2026);
        let (t, _) = parse_bsd(b"Jan  1 00:00:01 host").unwrap();
        let received = DateTime::from_unix_micros(
            (days_from_civil(2026, 12, 31) * 86_400 + 86_399) * 1_000_000,
        );
        assert_eq!(resolve(&t, &received, 0).0.year, 2027);
    }

    /// The year closest to the receive time, found by measuring all three candidates.
    fn closest_year_reference(
        t: &LegacyTime,
        received: &DateTime,
        offset: i16,
    ) -> (DateTime, bool) {
        let now = received.unix_seconds();
        // 29 February in three years without a leap day (2025 to 2027) becomes the 28th.
        let day = if (-1..=1).any(|d| t.day <= days_in_month(received.year + d, t.month)) {
            t.day
        } else {
            28
        };
        let best = [received.year - 1, received.year, received.year + 1]
            .into_iter()
            .filter(|&y| day <= days_in_month(y, t.month))
            .map(|year| DateTime {
                day,
                ..t.in_year(year, offset)
            })
            .min_by_key(|dt| (dt.unix_seconds() - now).abs())
            .unwrap();
        (best, true)
    }

    #[test]
    fn the_inferred_year_is_the_closest_of_three_for_every_day_of_the_year() {
        let receive_times = [
            (2027, 1, 1, 0),
            (2026, 7, 2, 12),
            (2026, 12, 31, 86_399),
            (2028, 2, 29, 3600),
            (2026, 4, 15, 43_200),
            (2100, 3, 1, 0),
        ];
        for (year, month, day, second) in receive_times {
            let received = DateTime::from_unix_micros(
                (days_from_civil(year, month, day) * 86_400 + second) * 1_000_000,
            );
            for offset in [0i16, -720, 840] {
                for m in 1..=12u8 {
                    for d in 1..=29u8.max(days_in_month(2028, m)) {
                        for (hour, minute) in [(0, 0), (12, 0), (23, 59)] {
                            let t = LegacyTime {
                                year: None,
                                month: m,
                                day: d,
                                hour,
                                minute,
                                second: 0,
                                nanos: 0,
                                frac_digits: 0,
                                offset_minutes: None,
                            };
                            assert_eq!(
                                resolve(&t, &received, offset),
                                closest_year_reference(&t, &received, offset),
                                "{t:?} received {received:?} offset {offset}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn seconds_into_a_year_differ_as_unix_seconds_do() {
        for year in [1999, 2000, 2024, 2026, 2100] {
            let at = |month, day, hour, offset_minutes| DateTime {
                year,
                month,
                day,
                hour,
                minute: 7,
                second: 59,
                nanos: 0,
                frac_digits: 0,
                offset_minutes,
            };
            let times = [
                at(1, 1, 0, 0),
                at(2, 28, 23, -330),
                at(2, days_in_month(year, 2), 12, 60),
                at(3, 1, 0, 840),
                at(7, 15, 9, -720),
                at(12, 31, 23, 0),
            ];
            for a in &times {
                for b in &times {
                    assert_eq!(
                        a.seconds_into_year() - b.seconds_into_year(),
                        a.unix_seconds() - b.unix_seconds(),
                        "{a} and {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn month_names_match_in_any_case_and_nothing_else_does() {
        let names = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        for (i, name) in names.iter().enumerate() {
            for form in [name.to_string(), name.to_uppercase(), name.to_lowercase()] {
                assert_eq!(month_abbrev(form.as_bytes()), Some((i as u8 + 1, &b""[..])));
            }
        }
        // Symbols that fold onto letters' neighbours, a digit for a letter, short input.
        for other in [&b"n@v"[..], b"N_V", b"0ct", b"No", b""] {
            assert_eq!(month_abbrev(other), None, "{other:?}");
        }
    }

    #[test]
    fn bsd_variants_parse() {
        let (t, rest) = parse_bsd(b"Mar  1 18:46:11.123: %SYS").unwrap();
        assert_eq!(
            (t.month, t.day, t.nanos, t.frac_digits),
            (3, 1, 123_000_000, 3)
        );
        assert_eq!(rest, b": %SYS");
        let (t, _) = parse_bsd(b"Jan 12 2024 10:00:00 UTC host").unwrap();
        assert_eq!((t.year, t.offset_minutes), (Some(2024), Some(0)));
        assert!(parse_bsd(b"Feb 30 2024 10:00:00 x").is_none());
    }

    #[test]
    fn rfc3339_output_keeps_fraction_digits_and_offset() {
        let (t, _) = parse_iso8601(b"2024-01-12T10:00:00.120+01:30").unwrap();
        let received = DateTime::from_unix_micros(0);
        assert_eq!(
            resolve(&t, &received, 0).0.to_rfc3339(),
            "2024-01-12T10:00:00.120+01:30"
        );
        assert_eq!(
            DateTime::from_unix_micros(1_700_000_000_123_456).to_rfc3339(),
            "2023-11-14T22:13:20.123456Z"
        );
    }

    #[test]
    fn rfc3339_bytes_match_the_formatted_form() {
        let reference = |t: &DateTime| {
            let mut s = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                t.year, t.month, t.day, t.hour, t.minute, t.second
            );
            if t.frac_digits > 0 {
                let digits = u32::from(t.frac_digits.min(9));
                let value = t.nanos / 10u32.pow(9 - digits);
                s += &format!(".{value:0width$}", width = digits as usize);
            }
            if t.offset_minutes == 0 {
                s.push('Z');
            } else {
                let abs = t.offset_minutes.unsigned_abs();
                let sign = if t.offset_minutes < 0 { '-' } else { '+' };
                s += &format!("{sign}{:02}:{:02}", abs / 60, abs % 60);
            }
            s
        };
        // Every receive time of a day at 7 µs steps, as the relay stamps them.
        let day = 1_795_000_000_000_000i64;
        for micros in (day..day + 86_400_000_000).step_by(7_000_003) {
            let t = DateTime::from_unix_micros(micros);
            assert_eq!(t.to_rfc3339(), reference(&t));
        }
        for (year, frac_digits, nanos, offset_minutes) in [
            (2026, 6, 123_456_000, 0),
            (999, 0, 0, -330),
            (9999, 9, 1, 840),
            (10_000, 3, 5_000_000, -1),
            (-5, 1, 900_000_000, 0),
        ] {
            let t = DateTime {
                year,
                month: 2,
                day: 9,
                hour: 7,
                minute: 5,
                second: 59,
                nanos,
                frac_digits,
                offset_minutes,
            };
            assert_eq!(t.to_rfc3339(), reference(&t));
        }
    }
}
