//! The PRI part shared by RFC 5424 and RFC 3164: `<` PRIVAL `>`, facility and severity.

/// Facility names in code order (RFC 5424 §6.2.1, table 1), as syslog daemons spell them.
const FACILITY_NAMES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Severity names in code order (RFC 5424 §6.2.1, table 2).
const SEVERITY_NAMES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// The highest PRIVAL: facility 23 (local7), severity 7 (debug).
pub const MAX_PRIVAL: u8 = 191;

/// The PRI that RFC 3164 §4.3.3 tells a relay to assume when a message has none: user.notice.
pub const DEFAULT_PRI: Pri = Pri(13);

/// A validated PRIVAL (0–191); facility and severity are derived from it, never stored apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pri(u8);

impl Pri {
    /// Builds a PRI from its number, or `None` above 191.
    pub fn new(value: u8) -> Option<Pri> {
        (value <= MAX_PRIVAL).then_some(Pri(value))
    }

    /// Builds a PRI from facility (0–23) and severity (0–7) codes.
    pub fn from_parts(facility: u8, severity: u8) -> Option<Pri> {
        (facility < 24 && severity < 8).then(|| Pri(facility * 8 + severity))
    }

    /// The PRIVAL number.
    pub fn value(self) -> u8 {
        self.0
    }

    /// The facility code, `PRIVAL / 8`.
    pub fn facility(self) -> u8 {
        self.0 >> 3
    }

    /// The severity code, `PRIVAL % 8`.
    pub fn severity(self) -> u8 {
        self.0 & 7
    }

    /// The facility's conventional name, e.g. `local7`.
    pub fn facility_name(self) -> &'static str {
        FACILITY_NAMES[usize::from(self.facility())]
    }

    /// The severity's conventional name, e.g. `notice`.
    pub fn severity_name(self) -> &'static str {
        SEVERITY_NAMES[usize::from(self.severity())]
    }
}

/// The facility code of a name (`local7`) or number (`23`).
pub fn facility_code(name: &str) -> Option<u8> {
    code_of(&FACILITY_NAMES, name)
}

/// The severity code of a name (`warning`, also `warn`, `error`, `emergency`) or number.
pub fn severity_code(name: &str) -> Option<u8> {
    match name {
        "warn" => Some(4),
        "error" => Some(3),
        "emergency" | "panic" => Some(0),
        _ => code_of(&SEVERITY_NAMES, name),
    }
}

fn code_of(names: &[&str], name: &str) -> Option<u8> {
    if let Ok(n) = name.parse::<u8>() {
        return (usize::from(n) < names.len()).then_some(n);
    }
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name))
        .map(|i| i as u8)
}

/// Why a PRI could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriError {
    /// The input does not start with `<digits>`.
    Missing,
    /// The number has a leading zero, more than three digits, or is above 191.
    OutOfRange,
}

/// What [`parse_pri`] read: the rest of the input and the PRI, or why there is none. Handed on
/// as it is, so that a parser after the first need not read the PRI again.
pub type PriRead<'a> = Result<(&'a [u8], Pri), PriError>;

/// Parses `<PRIVAL>` strictly: 1 to 3 digits, no leading zero except `<0>`, at most 191.
/// Written by hand: it runs on every message and nom's general combinators cost more here.
pub fn parse_pri(input: &[u8]) -> PriRead<'_> {
    let Some(body) = input.strip_prefix(b"<") else {
        return Err(PriError::Missing);
    };
    let digit = |c: u8| u16::from(c - b'0');
    // The well-formed PRIs as patterns: the compiler tests their bytes directly, where
    // counting digits with an iterator chain cost more than the rest of the function.
    let (value, rest) = match *body {
        [a @ b'0'..=b'9', b'>', ref rest @ ..] => (digit(a), rest),
        [a @ b'1'..=b'9', b @ b'0'..=b'9', b'>', ref rest @ ..] => (digit(a) * 10 + digit(b), rest),
        [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9', b'>', ref rest @ ..] => {
            (digit(a) * 100 + digit(b) * 10 + digit(c), rest)
        }
        _ => return Err(malformed(body)),
    };
    match u8::try_from(value).ok().and_then(Pri::new) {
        Some(pri) => Ok((rest, pri)),
        None => Err(PriError::OutOfRange),
    }
}

/// Why `body` (after `<`) is not a well-formed PRI: `OutOfRange` for a number with a leading
/// zero or more than three digits, `Missing` for anything else.
#[cold]
fn malformed(body: &[u8]) -> PriError {
    let digits = body
        .iter()
        .take(4)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits == 0 || body.get(digits) != Some(&b'>') {
        PriError::Missing
    } else {
        PriError::OutOfRange
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pri_splits_into_facility_and_severity() {
        let (rest, pri) = parse_pri(b"<165>1 x").unwrap();
        assert_eq!(rest, b"1 x");
        assert_eq!((pri.facility(), pri.severity()), (20, 5));
        assert_eq!(
            (pri.facility_name(), pri.severity_name()),
            ("local4", "notice")
        );
    }

    #[test]
    fn pri_rejects_leading_zeros_and_values_above_191() {
        assert_eq!(parse_pri(b"<0>"), Ok((&b""[..], Pri(0))));
        assert_eq!(parse_pri(b"<01>"), Err(PriError::OutOfRange));
        assert_eq!(parse_pri(b"<192>"), Err(PriError::OutOfRange));
        assert_eq!(parse_pri(b"<1911>"), Err(PriError::OutOfRange));
        assert_eq!(parse_pri(b"<>"), Err(PriError::Missing));
        assert_eq!(parse_pri(b"13>"), Err(PriError::Missing));
    }

    /// The digit-counting reader the patterns replaced.
    fn reference(input: &[u8]) -> Result<(&[u8], Pri), PriError> {
        let body = input.strip_prefix(b"<").ok_or(PriError::Missing)?;
        let digits = body
            .iter()
            .take(4)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 || body.get(digits) != Some(&b'>') {
            return Err(PriError::Missing);
        }
        if digits > 3 || (digits > 1 && body[0] == b'0') {
            return Err(PriError::OutOfRange);
        }
        let value = body[..digits]
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
        match u8::try_from(value).ok().and_then(Pri::new) {
            Some(pri) => Ok((&body[digits + 1..], pri)),
            None => Err(PriError::OutOfRange),
        }
    }

    #[test]
    fn answers_as_the_digit_counting_reader_on_every_short_input() {
        let alphabet = b"<>01289x";
        for len in 0..=6u32 {
            for mut n in 0..alphabet.len().pow(len) {
                let input: Vec<u8> = (0..len)
                    .map(|_| {
                        let c = alphabet[n % alphabet.len()];
                        n /= alphabet.len();
                        c
                    })
                    .collect();
                let input = [&b"<"[..], &input].concat();
                assert_eq!(parse_pri(&input), reference(&input), "{input:?}");
            }
        }
    }
}
