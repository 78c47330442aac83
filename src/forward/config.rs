//! Destinations as configured: a `[[forward]]` table or a `--forward URL`, validated into a
//! [`Destination`]. Options may be given as TOML keys or, for quick starts, as URL query
//! parameters (`splunk-hec://siem:8088?token=…`); a TOML key wins over the URL.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::filter::{Filter, FilterSection};

/// Debian's bundle of the system's trusted CAs, used when a TLS destination names no `ca`.
pub const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Defaults for forwarding.
pub mod defaults {
    pub const BATCH_MAX_RECORDS: usize = 1000;
    pub const BATCH_MAX_BYTES: usize = 1024 * 1024;
    /// A batch smaller than the bound waits this long for more records.
    pub const LINGER_MS: u64 = 5;
    /// Batches sent and not yet acknowledged, per destination.
    pub const IN_FLIGHT: usize = 4;
    /// Plain TCP and TLS: how long data the peer's kernel acknowledged must stay acknowledged
    /// on a healthy connection before it counts as delivered. A receiver that stops (SIGTERM)
    /// loses what its kernel took but it had not read; that is resent.
    pub const SETTLE_MS: u64 = 300;
    pub const TIMEOUT_SECS: u64 = 30;
    pub const RETRY_MAX_SECS: u64 = 30;
    /// How often a moving cursor is committed; a crash resends at most this much.
    pub const CURSOR_INTERVAL_MS: u64 = 200;
    /// A `file://` destination's output, when the relay creates it: the owner writes, the
    /// group (a log shipper, an auditor) reads, others nothing.
    pub const FILE_MODE: u32 = 0o640;
}

/// What kind of receiver a destination is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SyslogTcp,
    SyslogTls,
    SyslogUdp,
    Relp,
    SplunkHec,
    Elasticsearch,
    Http,
    File,
}

impl Kind {
    fn of_scheme(scheme: &str) -> Option<(Kind, bool)> {
        Some(match scheme {
            "syslog+tcp" | "syslog" => (Kind::SyslogTcp, false),
            "syslog+tls" => (Kind::SyslogTls, true),
            "syslog+udp" => (Kind::SyslogUdp, false),
            "relp" => (Kind::Relp, false),
            "splunk-hec" | "splunk-hec+https" => (Kind::SplunkHec, true),
            "splunk-hec+http" => (Kind::SplunkHec, false),
            "elasticsearch" | "opensearch" | "elasticsearch+http" => (Kind::Elasticsearch, false),
            "elasticsearch+https" | "opensearch+https" => (Kind::Elasticsearch, true),
            "http" => (Kind::Http, false),
            "https" => (Kind::Http, true),
            "file" => (Kind::File, false),
            _ => return None,
        })
    }

    pub fn is_http(self) -> bool {
        matches!(self, Kind::SplunkHec | Kind::Elasticsearch | Kind::Http)
    }

    fn default_port(self, tls: bool) -> Option<u16> {
        match self {
            Kind::SyslogTcp => Some(601),
            Kind::SyslogTls => Some(6514),
            Kind::SyslogUdp => Some(514),
            Kind::Relp => Some(2514),
            Kind::SplunkHec => Some(8088),
            Kind::Elasticsearch => Some(9200),
            Kind::Http => Some(if tls { 443 } else { 80 }),
            Kind::File => None,
        }
    }
}

/// How a record is written for the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// RFC 5424, byte-exact for messages that arrived as RFC 5424, plus the relay's SD element.
    Rfc5424,
    /// RFC 3164 for legacy receivers: messages that arrived as RFC 3164 go as they came.
    Rfc3164,
    /// The record of DESIGN.md §4 as one JSON object.
    Json,
}

/// How syslog messages are delimited on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// RFC 6587 octet counting: `LEN SP MSG`.
    OctetCounting,
    /// One message per line (a message's own line breaks would split it).
    Lf,
}

/// TLS client settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsClient {
    /// Trusted CAs; default: the system's (`/etc/ssl/certs/ca-certificates.crt`).
    pub ca: Option<PathBuf>,
    /// A client certificate and key, for receivers that ask for one.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The name the server's certificate must carry; default: the URL's host.
    pub server_name: Option<String>,
}

/// A validated destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub name: String,
    pub kind: Kind,
    pub url: String,
    pub host: String,
    pub port: u16,
    /// The HTTP path (HTTP, HEC), the index pattern (Elasticsearch) or the file.
    pub path: String,
    /// `user:password` from the URL, for HTTP basic authentication.
    pub userinfo: Option<String>,
    pub tls: Option<TlsClient>,
    pub format: OutputFormat,
    pub framing: Framing,
    /// Splunk HEC token, or an Elasticsearch API key, or an HTTP bearer token.
    pub token: Option<String>,
    /// Splunk HEC indexer acknowledgement.
    pub hec_ack: bool,
    pub index: Option<String>,
    pub sourcetype: Option<String>,
    pub batch_max_records: usize,
    pub batch_max_bytes: usize,
    pub linger: Duration,
    pub in_flight: usize,
    pub settle: Duration,
    pub timeout: Duration,
    pub retry_max: Duration,
    pub cursor_interval: Duration,
    /// Where a destination without a cursor starts: at the first stored record, or with what
    /// is committed after it starts.
    pub start_at_end: bool,
    /// The permission bits a `file://` destination's output gets when the relay creates it.
    pub file_mode: u32,
    pub filter: Filter,
}

/// One `[[forward]]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardSection {
    /// Names the destination in metrics, cursors and `auditrelay dlq`.
    pub name: Option<String>,
    pub url: String,
    /// `rfc5424` (syslog default), `rfc3164`, or `json` (HTTP and file default).
    pub format: Option<String>,
    /// `octet-counting` (default) or `lf`.
    pub framing: Option<String>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub server_name: Option<String>,
    pub token: Option<String>,
    pub ack: Option<bool>,
    pub index: Option<String>,
    pub sourcetype: Option<String>,
    pub batch_max_records: Option<usize>,
    pub batch_max_bytes: Option<usize>,
    pub linger_ms: Option<u64>,
    pub in_flight: Option<usize>,
    pub settle_ms: Option<u64>,
    pub timeout_secs: Option<u64>,
    pub retry_max_secs: Option<u64>,
    pub cursor_interval_ms: Option<u64>,
    /// `beginning` (default: every stored record) or `end` (only what comes after), for a
    /// destination the store has no cursor for yet.
    pub start: Option<String>,
    /// `file://` only: the mode, in octal ("0640", the default), of the output file when the
    /// relay creates it; an existing file keeps its own.
    pub file_mode: Option<String>,
    #[serde(default)]
    pub filter: FilterSection,
}

impl ForwardSection {
    /// A table holding only a URL, for `--forward URL`.
    pub fn from_url(url: &str) -> ForwardSection {
        ForwardSection {
            url: url.to_string(),
            ..ForwardSection::default()
        }
    }

    /// Fills unset keys from the URL's query; `Err((key, message))`.
    fn absorb_query(&mut self, query: &str) -> Result<(), (String, String)> {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            let bad = |what: &str| (format!("url?{k}"), format!("{v:?} is not {what}"));
            let number = |what| v.parse::<u64>().map_err(|_| bad(what));
            match k {
                "name" => set(&mut self.name, v.clone()),
                "format" => set(&mut self.format, v.clone()),
                "framing" => set(&mut self.framing, v.clone()),
                "ca" => set(&mut self.ca, PathBuf::from(&v)),
                "cert" => set(&mut self.cert, PathBuf::from(&v)),
                "key" => set(&mut self.key, PathBuf::from(&v)),
                "server_name" => set(&mut self.server_name, v.clone()),
                "token" => set(&mut self.token, v.clone()),
                "index" => set(&mut self.index, v.clone()),
                "sourcetype" => set(&mut self.sourcetype, v.clone()),
                "ack" => set(
                    &mut self.ack,
                    v.parse::<bool>().map_err(|_| bad("true or false"))?,
                ),
                "batch_max_records" => {
                    set(&mut self.batch_max_records, number("a number")? as usize)
                }
                "batch_max_bytes" => set(&mut self.batch_max_bytes, number("a number")? as usize),
                "linger_ms" => set(&mut self.linger_ms, number("a number")?),
                "in_flight" => set(&mut self.in_flight, number("a number")? as usize),
                "settle_ms" => set(&mut self.settle_ms, number("a number")?),
                "timeout_secs" => set(&mut self.timeout_secs, number("a number")?),
                "retry_max_secs" => set(&mut self.retry_max_secs, number("a number")?),
                "start" => set(&mut self.start, v.clone()),
                "file_mode" => set(&mut self.file_mode, v.clone()),
                "cursor_interval_ms" => set(&mut self.cursor_interval_ms, number("a number")?),
                other => {
                    return Err((
                        format!("url?{other}"),
                        "unknown parameter; the URL takes name, format, framing, ca, cert, key, \
                         server_name, token, ack, index, sourcetype, batch_max_records, \
                         batch_max_bytes, linger_ms, in_flight, settle_ms, timeout_secs, \
                         retry_max_secs, cursor_interval_ms, start, file_mode"
                            .into(),
                    ))
                }
            }
        }
        Ok(())
    }
}

fn set<T>(slot: &mut Option<T>, value: T) {
    if slot.is_none() {
        *slot = Some(value);
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&a), Some(&b)) if hex(a).is_some() && hex(b).is_some() => {
                out.push((hex(a).unwrap_or(0) * 16 + hex(b).unwrap_or(0)) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A name fit for metrics labels and store keys: letters, digits, `-`, `_`, `.`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn positive<T: PartialOrd + Default + std::fmt::Display>(
    key: &str,
    value: Option<T>,
    default: T,
) -> Result<T, (String, String)> {
    crate::config::positive_or(value, default).map_err(|m| (key.to_string(), m))
}

impl Destination {
    /// Validates a section; `Err((key, message))` with the key relative to the section.
    pub fn from_section(mut section: ForwardSection) -> Result<Destination, (String, String)> {
        let url_err = |m: String| ("url".to_string(), m);
        let url = section.url.clone();
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            url_err(format!(
                "{url:?} is not a URL such as syslog+tcp://siem.example:601"
            ))
        })?;
        let (kind, tls) = Kind::of_scheme(scheme).ok_or_else(|| {
            url_err(format!(
                "unknown scheme {scheme:?}: use syslog+tcp, syslog+tls, syslog+udp, relp, \
                 splunk-hec, elasticsearch(+https), http, https or file"
            ))
        })?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, q),
            None => (rest, ""),
        };
        section.absorb_query(query)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(percent_decode(u)), h),
            None => (None, authority),
        };
        let (host, port) = if kind == Kind::File {
            if !hostport.is_empty() && hostport != "localhost" {
                return Err(url_err(
                    "file:// takes a local path: file:///var/log/x".into(),
                ));
            }
            if path.is_empty() {
                return Err(url_err("file:// needs a path".into()));
            }
            (String::new(), 0)
        } else {
            split_host_port(hostport, kind.default_port(tls))
                .ok_or_else(|| url_err(format!("{hostport:?} is not host[:port]")))?
        };
        let format = match section.format.as_deref() {
            None if matches!(
                kind,
                Kind::SyslogTcp | Kind::SyslogTls | Kind::SyslogUdp | Kind::Relp
            ) =>
            {
                OutputFormat::Rfc5424
            }
            None => OutputFormat::Json,
            Some("rfc5424") => OutputFormat::Rfc5424,
            Some("rfc3164") => OutputFormat::Rfc3164,
            Some("json") => OutputFormat::Json,
            Some(other) => {
                return Err((
                    "format".into(),
                    format!("{other:?}: use rfc5424, rfc3164 or json"),
                ))
            }
        };
        let format_ok = match kind {
            Kind::File => true,
            Kind::SplunkHec | Kind::Elasticsearch | Kind::Http => format == OutputFormat::Json,
            _ => format != OutputFormat::Json,
        };
        if !format_ok {
            return Err((
                "format".into(),
                format!("{scheme}:// cannot send {format:?} records"),
            ));
        }
        let framing = match section.framing.as_deref() {
            None | Some("octet-counting") => Framing::OctetCounting,
            Some("lf") => Framing::Lf,
            Some(other) => {
                return Err((
                    "framing".into(),
                    format!("{other:?}: use octet-counting or lf"),
                ))
            }
        };
        let tls = if tls {
            Some(TlsClient {
                ca: section.ca.clone(),
                cert: section.cert.clone(),
                key: section.key.clone(),
                server_name: section.server_name.clone(),
            })
        } else {
            for (key, set) in [
                ("ca", section.ca.is_some()),
                ("cert", section.cert.is_some()),
                ("key", section.key.is_some()),
            ] {
                if set {
                    return Err((key.into(), format!("{scheme}:// does not use TLS")));
                }
            }
            None
        };
        if let Some(t) = &tls {
            if t.ca.is_none() && !std::path::Path::new(SYSTEM_CAS).exists() {
                return Err((
                    "ca".into(),
                    format!("no ca given and no system CA bundle at {SYSTEM_CAS}"),
                ));
            }
            if t.cert.is_some() != t.key.is_some() {
                return Err(("cert".into(), "cert and key must be given together".into()));
            }
        }
        if kind == Kind::SplunkHec && section.token.is_none() {
            return Err(("token".into(), "Splunk HEC needs a token".into()));
        }
        let name = match section.name.clone() {
            Some(n) => n,
            None if kind == Kind::File => format!(
                "file-{}",
                path.rsplit('/')
                    .next()
                    .unwrap_or("out")
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
            ),
            None => format!(
                "{}-{}-{port}",
                scheme.replace('+', "-"),
                host.replace(|c: char| !c.is_ascii_alphanumeric() && c != '.', "-")
            ),
        };
        if !valid_name(&name) {
            return Err((
                "name".into(),
                format!("{name:?}: use letters, digits, '-', '_' and '.' (at most 64)"),
            ));
        }
        let start_at_end = match section.start.as_deref() {
            None | Some("beginning") => false,
            Some("end") => true,
            Some(other) => {
                return Err(("start".into(), format!("{other:?}: use beginning or end")))
            }
        };
        let file_mode = match (section.file_mode.as_deref(), kind) {
            (None, _) => defaults::FILE_MODE,
            (Some(text), Kind::File) => crate::file_modes::parse_mode(text).ok_or_else(|| {
                (
                    "file_mode".to_string(),
                    format!("{text:?} is not an octal mode such as \"0640\""),
                )
            })?,
            (Some(_), _) => {
                return Err((
                    "file_mode".into(),
                    format!("{scheme}:// writes no file; file_mode is for file://"),
                ))
            }
        };
        let ms = Duration::from_millis;
        let secs = Duration::from_secs;
        let path = match kind {
            Kind::SplunkHec if path.is_empty() || path == "/" => {
                "/services/collector/event".to_string()
            }
            Kind::Http if path.is_empty() => "/".to_string(),
            Kind::Elasticsearch => path.trim_matches('/').to_string(),
            _ => path.to_string(),
        };
        let index = match kind {
            Kind::Elasticsearch => Some(
                section
                    .index
                    .clone()
                    .or_else(|| (!path.is_empty()).then(|| path.clone()))
                    .unwrap_or_else(|| "auditrelay-%Y.%m.%d".into()),
            ),
            _ => section.index.clone(),
        };
        Ok(Destination {
            name,
            kind,
            file_mode,
            url: redact(&url),
            host,
            port,
            path,
            userinfo,
            tls,
            format,
            framing,
            token: section.token.clone(),
            hec_ack: section.ack.unwrap_or(false),
            index,
            sourcetype: section.sourcetype.clone(),
            batch_max_records: positive(
                "batch_max_records",
                section.batch_max_records,
                defaults::BATCH_MAX_RECORDS,
            )?,
            batch_max_bytes: positive(
                "batch_max_bytes",
                section.batch_max_bytes,
                defaults::BATCH_MAX_BYTES,
            )?,
            linger: ms(section.linger_ms.unwrap_or(defaults::LINGER_MS)),
            in_flight: positive("in_flight", section.in_flight, defaults::IN_FLIGHT)?,
            settle: ms(section.settle_ms.unwrap_or(defaults::SETTLE_MS)),
            timeout: secs(positive(
                "timeout_secs",
                section.timeout_secs,
                defaults::TIMEOUT_SECS,
            )?),
            retry_max: secs(positive(
                "retry_max_secs",
                section.retry_max_secs,
                defaults::RETRY_MAX_SECS,
            )?),
            cursor_interval: ms(positive(
                "cursor_interval_ms",
                section.cursor_interval_ms,
                defaults::CURSOR_INTERVAL_MS,
            )?),
            start_at_end,
            filter: Filter::from_section(&section.filter)
                .map_err(|(k, m)| (format!("filter.{k}"), m))?,
        })
    }

    /// Batches the forwarder may have unacknowledged. Plain TCP and TLS keep batches the
    /// receiving kernel acknowledged for the settle time on top of `in_flight`, so that the
    /// settle time delays acknowledgement without limiting throughput.
    pub fn window(&self) -> usize {
        match self.kind {
            Kind::SyslogTcp | Kind::SyslogTls if !self.settle.is_zero() => self.in_flight + 256,
            _ => self.in_flight,
        }
    }

    /// `host:port` for connecting.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The URL without its query (which may hold a token) or password, for logs.
fn redact(url: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    match (base.find("://"), base.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &base[..s], &base[at + 1..]),
        _ => base.to_string(),
    }
}

fn split_host_port(text: &str, default_port: Option<u16>) -> Option<(String, u16)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port?,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            (!host.is_empty()).then_some((host.to_string(), port.parse().ok()?))
        }
        _ => (!text.is_empty()).then_some((text.to_string(), default_port?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(url: &str) -> Result<Destination, (String, String)> {
        Destination::from_section(ForwardSection::from_url(url))
    }

    #[test]
    fn urls_become_destinations() {
        let d = dest("syslog+tcp://127.0.0.1:5601?framing=lf").unwrap();
        assert_eq!(
            (d.kind, d.port, d.framing),
            (Kind::SyslogTcp, 5601, Framing::Lf)
        );
        assert_eq!(d.name, "syslog-tcp-127.0.0.1-5601");
        let d = dest("splunk-hec://siem:8088?token=abc&ack=true").unwrap();
        assert_eq!(d.path, "/services/collector/event");
        assert!(d.hec_ack);
        assert_eq!(d.url, "splunk-hec://siem:8088");
        let d = dest("elasticsearch://u:p@[::1]/logs-%Y").unwrap();
        assert_eq!(d.host, "::1");
        assert_eq!(d.port, 9200);
        assert_eq!(d.index.as_deref(), Some("logs-%Y"));
        assert_eq!(d.userinfo.as_deref(), Some("u:p"));
        assert_eq!(d.url, "elasticsearch://***@[::1]/logs-%Y");
        let d = dest("file:///var/log/out.ndjson").unwrap();
        assert_eq!((d.kind, d.format), (Kind::File, OutputFormat::Json));
        assert_eq!(d.path, "/var/log/out.ndjson");
        assert_eq!(d.file_mode, 0o640);
        assert_eq!(dest("file:///x?file_mode=0600").unwrap().file_mode, 0o600);
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(dest("ftp://x:1").unwrap_err().0, "url");
        assert_eq!(dest("splunk-hec://x:1").unwrap_err().0, "token");
        assert_eq!(
            dest("syslog+tcp://x:1?format=json").unwrap_err().0,
            "format"
        );
        assert_eq!(dest("syslog+tcp://x:1?bogus=1").unwrap_err().0, "url?bogus");
        assert_eq!(dest("syslog+tcp://x:1?ca=/a").unwrap_err().0, "ca");
        assert_eq!(
            dest("syslog+tcp://x:1?in_flight=0").unwrap_err().0,
            "in_flight"
        );
        assert_eq!(dest("syslog+tcp://x:1?name=a/b").unwrap_err().0, "name");
        assert_eq!(dest("file:///x?file_mode=rw").unwrap_err().0, "file_mode");
        assert_eq!(
            dest("syslog+tcp://x:1?file_mode=0640").unwrap_err().0,
            "file_mode"
        );
    }
}
