//! The configuration: one TOML file, typed, validated once at start-up. Every error names the
//! file, the key and what is wrong, so `auditrelay check-config` can point at the line to fix.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::forward::{Destination, ForwardSection};
use crate::ingest::url::{ListenerUrl, Transport};
use crate::replication::{ClusterConfig, ClusterSection};
use crate::source_match::SourceMatch;

/// Defaults a relay needs without any configuration.
pub mod defaults {
    /// The longest message kept whole; longer ones are truncated and say so.
    pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;
    /// Open connections per stream listener.
    pub const MAX_CONNECTIONS: usize = 1024;
    /// Seconds a connection may stay silent before it is closed.
    pub const IDLE_TIMEOUT_SECS: u64 = 600;
    /// Kernel receive buffer asked for each UDP socket: bursts of 50,000 msg/s need room.
    pub const UDP_RECEIVE_BUFFER: usize = 16 * 1024 * 1024;
    /// The longest a record waits for its batch to close. Under steady load batches run this
    /// long, so one fsync and one Raft round cover thousands of messages (each batch costs
    /// about half a millisecond of CPU whatever its size; 2 ms here cost 12% more CPU per
    /// message than 10 under loggen).
    pub const BATCH_MAX_DELAY_MS: u64 = 10;
    /// A batch closes sooner once nothing has arrived for this long: a sender that waits for
    /// answers (RELP's window, one `logger` call) does not wait out the delay bound.
    pub const BATCH_MAX_IDLE_MS: u64 = 1;
    pub const BATCH_MAX_BYTES: usize = 4 * 1024 * 1024;
    pub const BATCH_MAX_RECORDS: usize = 16_384;
    /// Batches committing at once: one being replicated and applied while the next is
    /// proposed.
    pub const BATCH_MAX_IN_FLIGHT: usize = 2;
    /// Records waiting for the write path; when full, stream listeners stop reading.
    pub const PIPELINE_CAPACITY: usize = 65_536;
    /// Bytes the records between the listeners and their commit may hold (their JSON and a
    /// fixed overhead each), whatever their count: the pipeline's share of memory.
    pub const PIPELINE_MAX_BYTES: usize = 128 * 1024 * 1024;
    /// Free disk below which UDP is refused (and below half of which every sender is held
    /// back), so that the disk does not fill: Raft stops for good on a full disk.
    pub const MIN_FREE_BYTES: u64 = 2 * 1024 * 1024 * 1024;
}

/// A configuration error: which file, which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// The file as written. Unknown keys are errors: a misspelt key must not be silently ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Where the store lives; relative paths are relative to the working directory.
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub http: Option<HttpSection>,
    #[serde(default, rename = "listener")]
    pub listeners: Vec<ListenerSection>,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub batch: BatchSection,
    #[serde(default)]
    pub parse: ParseSection,
    /// Destinations records are forwarded to, each with its own cursor.
    #[serde(default, rename = "forward")]
    pub forwards: Vec<ForwardSection>,
    /// Replication; without it the relay is a one-member cluster.
    pub cluster: Option<ClusterSection>,
    #[serde(default)]
    pub store: StoreSection,
}

/// `[store]`: the data directory's disk.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// Free bytes below which UDP is refused, and below half of which stream senders are held
    /// back; 0 turns the watermark off.
    pub min_free_bytes: Option<u64>,
}

/// `[http]`: the operations endpoint (metrics, health, cluster and dead-letter commands).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    pub listen: String,
    /// A file holding the admin token that mutating calls must carry; without it the relay
    /// generates `<data_dir>/admin.token` on first start.
    pub admin_token_file: Option<PathBuf>,
    /// Host names (or addresses) clients may use in `Host` besides the endpoint's own
    /// address and `localhost`, e.g. the name a reverse proxy or an operator uses.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

/// The validated `[http]` section (or `--http`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// `None`: `<data_dir>/admin.token`, generated when missing.
    pub admin_token_file: Option<PathBuf>,
    pub allowed_hosts: Vec<String>,
}

/// One `[[listener]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSection {
    /// Names the listener in metrics and in each record's `source.listener`.
    pub name: Option<String>,
    /// `udp://`, `tcp://`, `tls://`, `relp://` or `relp+tls://` with host and port; TLS files
    /// may be given as `?cert=…&key=…&ca=…` or with the keys below.
    pub url: String,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// With a CA, clients must present a certificate it signed.
    pub ca: Option<PathBuf>,
    pub max_message_size: Option<usize>,
    pub max_connections: Option<usize>,
    pub idle_timeout_secs: Option<u64>,
    pub udp_receive_buffer: Option<usize>,
    /// UDP sockets bound with SO_REUSEPORT; default one per core.
    pub udp_sockets: Option<usize>,
}

/// `[limits]`: defaults for every listener.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub max_message_size: Option<usize>,
    pub max_connections: Option<usize>,
    pub idle_timeout_secs: Option<u64>,
    pub pipeline_capacity: Option<usize>,
    pub pipeline_max_bytes: Option<usize>,
}

/// `[batch]`: how records are grouped into one durable write.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSection {
    pub max_delay_ms: Option<u64>,
    pub max_idle_ms: Option<u64>,
    pub max_bytes: Option<usize>,
    pub max_records: Option<usize>,
    pub max_in_flight: Option<usize>,
}

/// `[parse]`: parser options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParseSection {
    /// UTC offset for legacy timestamps without a zone, e.g. "+01:00".
    pub timezone: Option<String>,
    /// Read key=value pairs from legacy messages no dialect claims.
    pub key_values: Option<bool>,
    /// Per-source zones for legacy timestamps: listener name, IP or CIDR block → offset. The
    /// most specific match wins (longest prefix, then any listener name).
    #[serde(default)]
    pub zones: std::collections::BTreeMap<String, String>,
}

/// A validated listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    pub name: String,
    pub url: ListenerUrl,
    pub max_message_size: usize,
    pub max_connections: usize,
    pub idle_timeout_secs: u64,
    pub udp_receive_buffer: usize,
    pub udp_sockets: usize,
}

/// The validated configuration the relay runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub data_dir: PathBuf,
    pub http: Option<HttpConfig>,
    pub listeners: Vec<ListenerConfig>,
    pub batch_max_delay_ms: u64,
    pub batch_max_idle_ms: u64,
    pub batch_max_bytes: usize,
    pub batch_max_records: usize,
    pub batch_max_in_flight: usize,
    pub pipeline_capacity: usize,
    /// The byte budget of the records between the listeners and their commit.
    pub pipeline_max_bytes: usize,
    /// The disk watermark (0: off).
    pub min_free_bytes: u64,
    pub timezone_offset_minutes: i16,
    /// Per-source offsets, most specific first.
    pub zones: Vec<(SourceMatch, i16)>,
    pub key_values: bool,
    pub destinations: Vec<Destination>,
    pub cluster: ClusterConfig,
}

/// What the command line adds to (or, without `--config`, replaces) the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Vec<String>,
    pub http: Option<String>,
    /// Destinations given as `--forward URL`.
    pub forward: Vec<String>,
}

/// Reads and validates a configuration file.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        key: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    let parsed: ConfigFile = toml::from_str(&text).map_err(|e| ConfigError {
        file: file.clone(),
        key: String::new(),
        message: e.to_string().trim_end().replace('\n', " "),
    })?;
    validate(parsed, &file, overrides)
}

/// Builds the configuration from command-line flags alone.
pub fn from_flags(overrides: &Overrides) -> Result<Config, ConfigError> {
    validate(ConfigFile::default(), "command line", overrides)
}

fn err(file: &str, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        file: file.to_string(),
        key: key.into(),
        message: message.into(),
    }
}

/// Parses `+HH:MM`, `-HHMM` or `Z`/`UTC` into minutes east of UTC.
pub fn parse_offset(text: &str) -> Option<i16> {
    if matches!(text, "Z" | "UTC" | "utc") {
        return Some(0);
    }
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = text[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let hours: i16 = digits[..2].parse().ok()?;
    let minutes: i16 = digits[2..].parse().ok()?;
    (hours <= 23 && minutes <= 59).then_some(sign * (hours * 60 + minutes))
}

/// A count, size or duration that must be above zero, or its default when not given.
pub(crate) fn positive_or<T: PartialOrd + Default + fmt::Display>(
    value: Option<T>,
    default: T,
) -> Result<T, String> {
    match value {
        Some(v) if v <= T::default() => Err(format!("must be greater than 0, got {v}")),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

fn positive<T: PartialOrd + Default + fmt::Display>(
    file: &str,
    key: &str,
    value: Option<T>,
    default: T,
) -> Result<T, ConfigError> {
    positive_or(value, default).map_err(|m| err(file, key, m))
}

fn validate(parsed: ConfigFile, file: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
    let limits = &parsed.limits;
    let max_message_size = positive(
        file,
        "limits.max_message_size",
        limits.max_message_size,
        defaults::MAX_MESSAGE_SIZE,
    )?;
    let max_connections = positive(
        file,
        "limits.max_connections",
        limits.max_connections,
        defaults::MAX_CONNECTIONS,
    )?;
    let idle_timeout_secs = positive(
        file,
        "limits.idle_timeout_secs",
        limits.idle_timeout_secs,
        defaults::IDLE_TIMEOUT_SECS,
    )?;
    let pipeline_capacity = positive(
        file,
        "limits.pipeline_capacity",
        limits.pipeline_capacity,
        defaults::PIPELINE_CAPACITY,
    )?;
    let pipeline_max_bytes = positive(
        file,
        "limits.pipeline_max_bytes",
        limits.pipeline_max_bytes,
        defaults::PIPELINE_MAX_BYTES,
    )?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let mut sections = parsed.listeners.clone();
    sections.extend(overrides.listen.iter().map(|url| ListenerSection {
        name: None,
        url: url.clone(),
        cert: None,
        key: None,
        ca: None,
        max_message_size: None,
        max_connections: None,
        idle_timeout_secs: None,
        udp_receive_buffer: None,
        udp_sockets: None,
    }));
    let from_file = parsed.listeners.len();
    let mut listeners = Vec::new();
    let mut names = HashSet::new();
    let mut bound = HashSet::new();
    for (i, section) in sections.into_iter().enumerate() {
        let key = |field: &str| {
            if i < from_file {
                format!("listener[{i}].{field}")
            } else {
                format!("--listen {}", overrides.listen[i - from_file])
            }
        };
        let mut url = ListenerUrl::parse(&section.url).map_err(|m| err(file, key("url"), m))?;
        for (field, value, slot) in [
            ("cert", &section.cert, &mut url.tls_cert),
            ("key", &section.key, &mut url.tls_key),
            ("ca", &section.ca, &mut url.tls_ca),
        ] {
            if let Some(path) = value {
                if !url.transport.is_tls() {
                    return Err(err(
                        file,
                        key(field),
                        "only TLS listeners (tls://, relp+tls://) take certificates",
                    ));
                }
                *slot = Some(path.clone());
            }
        }
        if url.tls_cert.is_some() != url.tls_key.is_some() {
            return Err(err(file, key("url"), "cert and key must be given together"));
        }
        if url.tls_ca.is_some() && url.tls_cert.is_none() {
            return Err(err(
                file,
                key("ca"),
                "a client CA needs the listener's own cert and key",
            ));
        }
        let name = section.name.clone().unwrap_or_else(|| {
            format!(
                "{}-{}",
                url.transport.scheme().replace('+', "-"),
                url.addr.port()
            )
        });
        if !names.insert(name.clone()) {
            return Err(err(
                file,
                key("name"),
                format!("listener name {name:?} is used twice"),
            ));
        }
        let socket_kind = if url.transport == Transport::Udp {
            "udp"
        } else {
            "tcp"
        };
        if !bound.insert((socket_kind, url.addr)) {
            return Err(err(
                file,
                key("url"),
                format!("{} {} is bound by another listener", socket_kind, url.addr),
            ));
        }
        listeners.push(ListenerConfig {
            name,
            max_message_size: positive(
                file,
                &key("max_message_size"),
                section.max_message_size,
                max_message_size,
            )?,
            max_connections: positive(
                file,
                &key("max_connections"),
                section.max_connections,
                max_connections,
            )?,
            idle_timeout_secs: positive(
                file,
                &key("idle_timeout_secs"),
                section.idle_timeout_secs,
                idle_timeout_secs,
            )?,
            udp_receive_buffer: positive(
                file,
                &key("udp_receive_buffer"),
                section.udp_receive_buffer,
                defaults::UDP_RECEIVE_BUFFER,
            )?,
            udp_sockets: positive(file, &key("udp_sockets"), section.udp_sockets, cores)?,
            url,
        });
    }

    let http_text = overrides.http.clone().map(|h| ("--http", h)).or_else(|| {
        parsed
            .http
            .as_ref()
            .map(|h| ("http.listen", h.listen.clone()))
    });
    let http = match http_text {
        Some((key, text)) => Some(HttpConfig {
            listen: text
                .parse::<SocketAddr>()
                .map_err(|e| err(file, key, format!("{text:?} is not an address:port ({e})")))?,
            admin_token_file: parsed
                .http
                .as_ref()
                .and_then(|h| h.admin_token_file.clone()),
            allowed_hosts: allowed_hosts(parsed.http.as_ref(), file)?,
        }),
        None => None,
    };
    let data_dir = overrides
        .data_dir
        .clone()
        .or(parsed.data_dir)
        .unwrap_or_else(|| PathBuf::from("data"));
    let timezone_offset_minutes = match &parsed.parse.timezone {
        Some(tz) => parse_offset(tz).ok_or_else(|| {
            err(
                file,
                "parse.timezone",
                format!("{tz:?} is not an offset such as +01:00"),
            )
        })?,
        None => 0,
    };
    let mut zones = Vec::new();
    for (source, offset) in &parsed.parse.zones {
        let key = format!("parse.zones.{source:?}");
        let m = SourceMatch::parse(source).map_err(|e| err(file, key.clone(), e))?;
        let minutes = parse_offset(offset).ok_or_else(|| {
            err(
                file,
                key,
                format!("{offset:?} is not an offset such as +01:00"),
            )
        })?;
        zones.push((m, minutes));
    }
    zones.sort_by_key(|(m, _)| std::cmp::Reverse(m.specificity()));
    let destinations = destinations(&parsed.forwards, file, overrides)?;
    let cluster = match &parsed.cluster {
        Some(section) => ClusterConfig::from_section(section).map_err(|(k, m)| err(file, k, m))?,
        None => ClusterConfig::embedded(),
    };
    let batch = &parsed.batch;
    if let (Some(_), Some(bytes)) = (&parsed.cluster, batch.max_bytes) {
        if bytes > crate::replication::MAX_BATCH_BYTES {
            return Err(err(
                file,
                "batch.max_bytes",
                format!(
                    "{bytes} is over {} for a cluster: a Raft append of 16 batches must fit one peer frame",
                    crate::replication::MAX_BATCH_BYTES
                ),
            ));
        }
    }
    Ok(Config {
        data_dir,
        http,
        listeners,
        batch_max_delay_ms: positive(
            file,
            "batch.max_delay_ms",
            batch.max_delay_ms,
            defaults::BATCH_MAX_DELAY_MS,
        )?,
        batch_max_idle_ms: positive(
            file,
            "batch.max_idle_ms",
            batch.max_idle_ms,
            defaults::BATCH_MAX_IDLE_MS,
        )?,
        batch_max_bytes: positive(
            file,
            "batch.max_bytes",
            batch.max_bytes,
            defaults::BATCH_MAX_BYTES,
        )?,
        batch_max_records: positive(
            file,
            "batch.max_records",
            batch.max_records,
            defaults::BATCH_MAX_RECORDS,
        )?,
        batch_max_in_flight: positive(
            file,
            "batch.max_in_flight",
            batch.max_in_flight,
            defaults::BATCH_MAX_IN_FLIGHT,
        )?,
        pipeline_capacity,
        pipeline_max_bytes,
        min_free_bytes: parsed
            .store
            .min_free_bytes
            .unwrap_or(defaults::MIN_FREE_BYTES),
        timezone_offset_minutes,
        zones,
        key_values: parsed.parse.key_values.unwrap_or(false),
        destinations,
        cluster,
    })
}

/// `http.allowed_hosts`: each a host name or an address, without a scheme, port or path (a
/// name matches on any port).
fn allowed_hosts(section: Option<&HttpSection>, file: &str) -> Result<Vec<String>, ConfigError> {
    let Some(section) = section else {
        return Ok(Vec::new());
    };
    for (i, name) in section.allowed_hosts.iter().enumerate() {
        let plain = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
            && (name.starts_with('[') || !name.contains(':'));
        if !plain {
            return Err(err(
                file,
                format!("http.allowed_hosts[{i}]"),
                format!("{name:?} is not a host name or address (no scheme, port or path)"),
            ));
        }
    }
    Ok(section.allowed_hosts.clone())
}

fn destinations(
    sections: &[ForwardSection],
    file: &str,
    overrides: &Overrides,
) -> Result<Vec<Destination>, ConfigError> {
    let mut out: Vec<Destination> = Vec::new();
    let from_flags = overrides
        .forward
        .iter()
        .map(|u| ForwardSection::from_url(u));
    for (i, section) in sections.iter().cloned().chain(from_flags).enumerate() {
        let key = |field: &str| {
            if i < sections.len() {
                format!("forward[{i}].{field}")
            } else {
                format!(
                    "--forward {} ({field})",
                    overrides.forward[i - sections.len()]
                )
            }
        };
        let dest = Destination::from_section(section).map_err(|(k, m)| err(file, key(&k), m))?;
        if out.iter().any(|d| d.name == dest.name) {
            return Err(err(
                file,
                key("name"),
                format!("destination name {:?} is used twice", dest.name),
            ));
        }
        out.push(dest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, text).unwrap();
        load(&path, &Overrides::default()).map_err(|mut e| {
            e.file = "relay.toml".into();
            e
        })
    }

    #[test]
    fn a_full_file_validates() {
        let c = load_text(
            r#"
            data_dir = "/tmp/x"
            [http]
            listen = "127.0.0.1:9514"
            [[listener]]
            url = "udp://127.0.0.1:5514"
            [[listener]]
            name = "secure"
            url = "tls://127.0.0.1:6514?cert=/c.pem&key=/k.pem"
            ca = "/ca.pem"
            [parse]
            timezone = "-05:00"
            "#,
        )
        .unwrap();
        assert_eq!(c.listeners[0].name, "udp-5514");
        assert_eq!(c.listeners[1].url.tls_ca, Some(PathBuf::from("/ca.pem")));
        assert_eq!(c.timezone_offset_minutes, -300);
        let http = c.http.unwrap();
        assert_eq!(http.admin_token_file, None);
        assert!(http.allowed_hosts.is_empty());
    }

    #[test]
    fn the_shipped_configurations_validate() {
        for file in ["auditrelay.toml", "cluster/node1.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("conf")
                .join(file);
            if let Err(e) = load(&path, &Overrides::default()) {
                panic!("{e}");
            }
        }
    }

    #[test]
    fn the_http_section_names_the_token_file_and_the_allowed_hosts() {
        let c = load_text(
            "[http]\nlisten = \"0.0.0.0:9514\"\nadmin_token_file = \"/etc/auditrelay/admin.token\"\n\
             allowed_hosts = [\"relay1.example\", \"[fd00::7]\"]\n",
        )
        .unwrap();
        let http = c.http.unwrap();
        assert_eq!(
            http.admin_token_file,
            Some(PathBuf::from("/etc/auditrelay/admin.token"))
        );
        assert_eq!(http.allowed_hosts, ["relay1.example", "[fd00::7]"]);
    }

    #[test]
    fn only_a_cluster_keeps_raft_log_behind_its_snapshots() {
        let embedded = load_text("[[listener]]\nurl = \"tcp://127.0.0.1:5514\"\n").unwrap();
        assert_eq!(embedded.cluster.log_keep, 0);
        let cluster = load_text(
            "[cluster]\nnode_id = 1\nlisten = \"127.0.0.1:7001\"\n\
             [[cluster.peer]]\nid = 2\naddress = \"127.0.0.1:7002\"\n",
        )
        .unwrap();
        assert_eq!(cluster.cluster.log_keep, 20_000);
    }

    #[test]
    fn errors_name_the_key() {
        let e = load_text("[[listener]]\nurl = \"ftp://1.2.3.4:1\"\n").unwrap_err();
        assert_eq!(e.key, "listener[0].url");
        let e = load_text("[[listener]]\nurl = \"tcp://127.0.0.1:1\"\nmax_connections = 0\n")
            .unwrap_err();
        assert_eq!(e.key, "listener[0].max_connections");
        let e = load_text("[batch]\nmax_dely_ms = 3\n").unwrap_err();
        assert!(e.to_string().contains("max_dely_ms"), "{e}");
        let e = load_text("[parse]\ntimezone = \"Mars\"\n").unwrap_err();
        assert_eq!(e.key, "parse.timezone");
        let e = load_text("[parse.zones]\n\"10.0.0.0/8\" = \"CET\"\n").unwrap_err();
        assert_eq!(e.key, "parse.zones.\"10.0.0.0/8\"");
        let c = load_text("[parse.zones]\nudp = \"-05:00\"\n\"10.0.0.0/8\" = \"+01:00\"\n\"10.1.0.0/16\" = \"+02:00\"\n").unwrap();
        let offsets: Vec<i16> = c.zones.iter().map(|z| z.1).collect();
        assert_eq!(offsets, vec![120, 60, -300], "most specific first");
        let e = load_text("[[forward]]\nurl = \"syslog+tcp://127.0.0.1:1\"\n[forward.filter]\nseverity = \"loud\"\n").unwrap_err();
        assert_eq!(e.key, "forward[0].filter.severity");
        let e = load_text("[[forward]]\nurl = \"relp://a:1\"\nname = \"x\"\n[[forward]]\nurl = \"relp://b:1\"\nname = \"x\"\n").unwrap_err();
        assert_eq!(e.key, "forward[1].name");
        let e = load_text("[[listener]]\nurl = \"tcp://127.0.0.1:1\"\n[[listener]]\nurl = \"relp://127.0.0.1:1\"\n").unwrap_err();
        assert!(e.message.contains("bound by another listener"), "{e}");
        let e = load_text("[http]\nlisten = \"127.0.0.1:9514\"\nallowed_hosts = [\"relay.example\", \"http://relay.example:9514\"]\n").unwrap_err();
        assert_eq!(e.key, "http.allowed_hosts[1]");
        let e = load_text("[http]\nlisten = \"127.0.0.1:9514\"\nadmin_tokn_file = \"/t\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("admin_tokn_file"), "{e}");
    }
}
