//! The admin token that every mutating call of the operations endpoint must carry, as
//! `Authorization: Bearer TOKEN`. It lives in a file: one the configuration names
//! (`http.admin_token_file`), or `<data-dir>/admin.token`, generated on first start.
//!
//! Invariant: the relay keeps only the token's SHA-256 digest in memory, and nothing here logs
//! or prints the token; errors name the file, never its contents.

use std::fmt;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ring::digest::{digest, SHA256, SHA256_OUTPUT_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// The token file the relay generates in its data directory when none is configured.
pub const DEFAULT_FILE_NAME: &str = "admin.token";
/// Random bytes in a generated token; hex-encoded it is 64 characters long.
const GENERATED_BYTES: usize = 32;
/// The shortest token accepted: a short token can be guessed over the network.
pub const MIN_LEN: usize = 16;
/// The longest token accepted: it travels in one header line.
pub const MAX_LEN: usize = 1024;
/// Who may read a generated token file: its owner only.
const FILE_MODE: u32 = 0o600;

/// Why a token could not be read, generated or used.
#[derive(Debug)]
pub enum TokenError {
    /// The file could not be read or written.
    Io {
        path: PathBuf,
        action: &'static str,
        error: io::Error,
    },
    /// The file (or variable) holds something that is not a usable token.
    Invalid { source: String, why: &'static str },
    /// The system's random generator failed.
    Random,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Io {
                path,
                action,
                error,
            } => write!(f, "{}: cannot {action}: {error}", path.display()),
            TokenError::Invalid { source, why } => write!(f, "{source}: {why}"),
            TokenError::Random => write!(f, "the system random generator failed"),
        }
    }
}

impl std::error::Error for TokenError {}

/// Checks a token as written in a file or a variable named `source`; returns it without the
/// surrounding white space (a file usually ends with a newline).
///
/// A token is printable ASCII without spaces, so that it fits in a header line as it is and
/// can never smuggle a line break into a request.
pub fn parse(source: &str, text: &str) -> Result<String, TokenError> {
    let token = text.trim();
    let invalid = |why| TokenError::Invalid {
        source: source.to_string(),
        why,
    };
    if token.is_empty() {
        return Err(invalid("holds no token"));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "a token is printable ASCII without spaces or line breaks",
        ));
    }
    if token.len() < MIN_LEN {
        return Err(invalid("the token is shorter than 16 characters"));
    }
    if token.len() > MAX_LEN {
        return Err(invalid("the token is longer than 1024 characters"));
    }
    Ok(token.to_string())
}

/// Reads and checks the token in `path`.
pub fn read(path: &Path) -> Result<String, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|error| TokenError::Io {
        path: path.to_path_buf(),
        action: "read the admin token",
        error,
    })?;
    parse(&path.display().to_string(), &text)
}

/// The token the endpoint compares requests against, kept as its digest.
pub struct AdminToken {
    digest: [u8; SHA256_OUTPUT_LEN],
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(…)")
    }
}

/// Whether the token was read or has just been generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    Read,
    Generated,
}

impl AdminToken {
    /// The token `token` (already checked by [`parse`]).
    pub fn new(token: &str) -> AdminToken {
        let mut d = [0; SHA256_OUTPUT_LEN];
        d.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
        AdminToken { digest: d }
    }

    /// The token in `path`, which must exist.
    pub fn load(path: &Path) -> Result<AdminToken, TokenError> {
        read(path).map(|t| AdminToken::new(&t))
    }

    /// The token in `path`; when there is no such file, a new random token written there,
    /// readable by its owner only. `create_new` makes two starts racing for the file agree:
    /// the loser reads what the winner wrote.
    pub fn load_or_generate(path: &Path) -> Result<(AdminToken, Provenance), TokenError> {
        let mut bytes = [0u8; GENERATED_BYTES];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| TokenError::Random)?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let io_error = |action, error| TokenError::Io {
            path: path.to_path_buf(),
            action,
            error,
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(path);
        match file {
            Ok(mut file) => {
                file.write_all(format!("{token}\n").as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| io_error("write the admin token", e))?;
                Ok((AdminToken::new(&token), Provenance::Generated))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                AdminToken::load(path).map(|t| (t, Provenance::Read))
            }
            Err(e) => Err(io_error("create the admin token", e)),
        }
    }

    /// Whether `presented` is the token.
    ///
    /// The digests are compared, not the tokens, and without an early exit: how long the
    /// comparison takes can depend only on the presented token's digest, and learning how
    /// much of a SHA-256 digest matches tells nothing about the token that yields it.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let presented = digest(&SHA256, presented);
        let difference = presented
            .as_ref()
            .iter()
            .zip(self.digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(difference) == 0
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn the_token_matches_only_itself() {
        let token = AdminToken::new(TOKEN);
        assert!(token.matches(TOKEN.as_bytes()));
        assert!(!token.matches(b""));
        assert!(!token.matches(&TOKEN.as_bytes()[..31]));
        assert!(!token.matches(format!("{TOKEN}0").as_bytes()));
        assert!(!token.matches(TOKEN.to_uppercase().as_bytes()));
    }

    #[test]
    fn a_token_file_is_trimmed_and_checked() {
        assert_eq!(parse("f", &format!("  {TOKEN}\n")).unwrap(), TOKEN);
        for bad in [
            "",
            "\n",
            "short",
            "has a space in it, sixteen+",
            "line\nbreak-0123456789",
        ] {
            let e = parse("f", bad).unwrap_err();
            assert!(e.to_string().starts_with("f: "), "{e}");
        }
        assert!(parse("f", &"x".repeat(MAX_LEN + 1)).is_err());
    }

    #[test]
    fn a_generated_token_is_private_and_kept_across_starts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE_NAME);
        let (first, provenance) = AdminToken::load_or_generate(&path).unwrap();
        assert_eq!(provenance, Provenance::Generated);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, FILE_MODE, "{mode:o}");
        let text = read(&path).unwrap();
        assert_eq!(text.len(), 2 * GENERATED_BYTES);
        assert!(first.matches(text.as_bytes()));
        let (again, provenance) = AdminToken::load_or_generate(&path).unwrap();
        assert_eq!(provenance, Provenance::Read);
        assert!(again.matches(text.as_bytes()));
    }

    #[test]
    fn a_missing_configured_file_is_an_error_naming_it() {
        let e = AdminToken::load(Path::new("/nonexistent/admin.token")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/admin.token"), "{e}");
    }
}
