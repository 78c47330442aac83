//! The command line's side of the operations endpoint: one plain HTTP/1.0 request to a running
//! relay (`dlq replay`, `cluster status|add|remove`), so these commands need no HTTP stack.
//! Mutating calls carry the node's admin token, found by [`TokenSource`].

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use crate::http::token;

/// The variable a command reads the admin token from when no flag says where it is.
pub const TOKEN_VARIABLE: &str = "AUDITRELAY_ADMIN_TOKEN";

/// Where a command finds the node's admin token. The first one given wins: `--token-file`,
/// then `--data-dir` (the `admin.token` the node generated there), then
/// `AUDITRELAY_ADMIN_TOKEN`: a flag on the command line says more about this one call than
/// a variable set for the whole session.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TokenSource {
    /// A file holding the node's admin token (its http.admin_token_file).
    #[arg(long, conflicts_with = "data_dir")]
    pub token_file: Option<PathBuf>,
    /// The node's data directory, whose admin.token is read.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl TokenSource {
    /// The token, if any source is given; an error when the given source holds none.
    pub fn find(&self) -> Result<Option<String>, String> {
        let file = self.token_file.clone().or_else(|| {
            self.data_dir
                .as_ref()
                .map(|dir| dir.join(token::DEFAULT_FILE_NAME))
        });
        if let Some(path) = file {
            return token::read(&path).map(Some).map_err(|e| e.to_string());
        }
        match std::env::var(TOKEN_VARIABLE) {
            Ok(text) => token::parse(TOKEN_VARIABLE, &text)
                .map(Some)
                .map_err(|e| e.to_string()),
            Err(_) => Ok(None),
        }
    }

    /// The token, which a mutating call cannot do without.
    pub fn require(&self) -> Result<String, String> {
        self.find()?.ok_or_else(|| {
            format!(
                "no admin token: pass --token-file or --data-dir of the node (or set {TOKEN_VARIABLE})"
            )
        })
    }
}

/// Sends `method path` to the relay at `http`, with the admin token when given; returns the
/// status code and the trimmed body.
pub fn request(
    http: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect_timeout(&http, Duration::from_secs(5))
        .map_err(|e| format!("{http}: {e} (is the relay running with --http {http}?)"))?;
    // Adding a node waits for it to catch up, which can take a while.
    s.set_read_timeout(Some(Duration::from_secs(600)))
        .map_err(|e| e.to_string())?;
    // A token is printable ASCII without spaces (`token::parse`), so it cannot break the
    // header line.
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {http}\r\n{authorization}Content-Length: 0\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(|e| e.to_string())?;
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .trim()
        .to_string();
    Ok((status, body))
}
