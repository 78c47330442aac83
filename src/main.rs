//! The `auditrelay` command.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use auditrelay::config::{self, Overrides};
use auditrelay::ops_client::TokenSource;
use auditrelay::replay::{replay, ReplayOptions};
use auditrelay::store::query::{self, rfc3339_micros, Query};
use auditrelay::store::StoreReader;
use auditrelay_parsers::framing::Framing;
use auditrelay_parsers::timestamp::DateTime;
use auditrelay_parsers::{FormatChoice, ParseOptions};
use clap::{Parser, Subcommand, ValueEnum};

/// The default maximum frame size: large enough for any real device, small enough that a
/// hostile length cannot make the relay buffer without bound.
const DEFAULT_MAX_FRAME: usize = 64 * 1024;

#[derive(Parser)]
#[command(
    name = "auditrelay",
    version,
    about = "A syslog relay for centralized audit logging"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay: listen, parse, commit every message to the store before counting it.
    Run(RunArgs),
    /// Validate a configuration file without starting; errors name the file and the key.
    CheckConfig {
        /// The TOML file to check.
        file: PathBuf,
    },
    /// Print stored records matching the filters as NDJSON, in seq order (works while the relay
    /// runs).
    Query(QueryArgs),
    /// Frame and parse a captured byte stream; print one JSON record per frame on stdout and a
    /// summary on stderr.
    Parse(ParseArgs),
    /// Print the number of records, the last seq and a SHA-256 over all records in seq order:
    /// replicas holding the same records print the same line (works while the relay runs).
    Digest {
        /// The relay's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// The records a destination refused for good (its dead-letter set).
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// The replicated cluster, through a running node's operations endpoint.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Print this node's view of the cluster as JSON: role, term, leader, indexes, members.
    Status {
        /// The node's operations endpoint (its --http address).
        #[arg(long)]
        http: SocketAddr,
        #[command(flatten)]
        token: TokenSource,
    },
    /// Add a node (started with `join = true`): it catches up, then becomes a voting member.
    /// Node ids are never reused.
    Add {
        /// The new node's id, higher than any id the cluster has had.
        id: u64,
        /// The new node's peer address (its cluster.listen or cluster.advertise).
        address: String,
        /// Any member's operations endpoint; the leader carries the change out.
        #[arg(long)]
        http: SocketAddr,
        #[command(flatten)]
        token: TokenSource,
    },
    /// Remove a node from the cluster.
    Remove {
        /// The node's id.
        id: u64,
        /// Any member's operations endpoint.
        #[arg(long)]
        http: SocketAddr,
        #[command(flatten)]
        token: TokenSource,
    },
}

/// Sends a cluster command to the node at `http` and prints its answer.
fn run_cluster(command: ClusterCommand) -> Result<(), String> {
    let (http, method, path, token) = match command {
        // Reading needs no token; one given is sent all the same.
        ClusterCommand::Status { http, token } => {
            (http, "GET", "/cluster/status".to_string(), token.find()?)
        }
        ClusterCommand::Add {
            id,
            address,
            http,
            token,
        } => (
            http,
            "POST",
            format!("/cluster/add?id={id}&address={address}"),
            Some(token.require()?),
        ),
        ClusterCommand::Remove { id, http, token } => (
            http,
            "POST",
            format!("/cluster/remove?id={id}"),
            Some(token.require()?),
        ),
    };
    match auditrelay::ops_client::request(http, method, &path, token.as_deref())? {
        (200, body) => {
            println!("{body}");
            Ok(())
        }
        (status, body) => Err(format!("the node answered {status}: {body}")),
    }
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Print a destination's dead letters as NDJSON: seq, at, error and the record.
    List {
        /// The destination's name.
        destination: String,
        /// The relay's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Ask the running relay to send a destination's dead letters again; each one the
    /// receiver takes leaves the set.
    Replay {
        /// The destination's name.
        destination: String,
        /// The relay's operations endpoint (its --http address).
        #[arg(long)]
        http: std::net::SocketAddr,
        #[command(flatten)]
        token: TokenSource,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The configuration file; without it, only the flags below apply.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where the store lives (overrides the file's data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A listener to add, e.g. udp://127.0.0.1:5514 or tls://127.0.0.1:6514?cert=F&key=F.
    #[arg(long)]
    listen: Vec<String>,
    /// Address of the operations endpoint (/metrics, /healthz, /readyz, cluster and dlq
    /// commands), e.g. 127.0.0.1:9514.
    #[arg(long)]
    http: Option<String>,
    /// A destination to forward to, e.g. syslog+tcp://siem:601 or
    /// splunk-hec://siem:8088?token=T (repeatable).
    #[arg(long)]
    forward: Vec<String>,
}

#[derive(clap::Args)]
struct QueryArgs {
    /// The relay's data directory.
    #[arg(long)]
    data_dir: PathBuf,
    /// Received at or after this time (RFC 3339, or a date: 2026-11-26).
    #[arg(long, value_parser = parse_time)]
    since: Option<i64>,
    /// Received before this time (RFC 3339, or a date).
    #[arg(long, value_parser = parse_time)]
    until: Option<i64>,
    /// Exact hostname.
    #[arg(long)]
    host: Option<String>,
    /// Exact app name (RFC 3164 TAG).
    #[arg(long)]
    app: Option<String>,
    /// Severity at most this: 3 means err, crit, alert and emerg.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=7))]
    severity_max: Option<u8>,
    /// Exact sender IP address.
    #[arg(long)]
    source_ip: Option<String>,
    /// A substring of the message.
    #[arg(long)]
    text: Option<String>,
    /// Print at most this many records.
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(clap::Args)]
struct ParseArgs {
    /// The capture to read; standard input when absent or `-`.
    file: Option<PathBuf>,
    /// How frames are delimited (RFC 6587): detected per frame, or one framing only.
    #[arg(long, value_enum, default_value_t = FramingArg::Auto)]
    framing: FramingArg,
    /// Which syslog format to expect; `rfc5424` is strict: anything invalid becomes `raw`.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    format: FormatArg,
    /// Keep continuation lines of LF/NUL-framed messages in the same frame.
    #[arg(long)]
    multiline: bool,
    /// The longest frame kept whole, in bytes; longer ones are truncated and say so.
    #[arg(long, default_value_t = DEFAULT_MAX_FRAME)]
    max_frame: usize,
    /// UTC offset for legacy timestamps without a zone, e.g. `+01:00` or `-0500`.
    #[arg(long, default_value = "+00:00", value_parser = parse_offset)]
    timezone: i16,
    /// Read key=value pairs from legacy messages that no dialect claims.
    #[arg(long)]
    key_values: bool,
    /// Receive time stamped on every record (RFC 3339), for reproducible output; default: now.
    #[arg(long, value_parser = parse_received_at)]
    received_at: Option<DateTime>,
}

#[derive(Clone, Copy, ValueEnum)]
enum FramingArg {
    Auto,
    OctetCounting,
    Lf,
    Nul,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Auto,
    Rfc5424,
    Rfc3164,
}

/// The `--timezone` value, read like the config file's `parse.timezone`.
fn parse_offset(text: &str) -> Result<i16, String> {
    config::parse_offset(text)
        .ok_or_else(|| format!("expected an offset such as +01:00 or -0500, got {text:?}"))
}

fn parse_received_at(text: &str) -> Result<DateTime, String> {
    rfc3339_micros(text)
        .map(DateTime::from_unix_micros)
        .ok_or_else(|| {
            format!("expected an RFC 3339 time such as 2026-01-01T00:00:00Z, got {text:?}")
        })
}

fn parse_time(text: &str) -> Result<i64, String> {
    rfc3339_micros(text)
        .or_else(|| rfc3339_micros(&format!("{text}T00:00:00Z")))
        .ok_or_else(|| format!("expected an RFC 3339 time or a date, got {text:?}"))
}

fn run_relay(args: RunArgs) -> Result<(), String> {
    let overrides = Overrides {
        data_dir: args.data_dir,
        listen: args.listen,
        http: args.http,
        forward: args.forward,
    };
    let config = match &args.config {
        Some(path) => config::load(path, &overrides),
        None => config::from_flags(&overrides),
    }
    .map_err(|e| e.to_string())?;
    if config.listeners.is_empty() {
        return Err("no listeners: give --config or --listen".into());
    }
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // Raft's own info lines narrate every vote; ours say what matters.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("auditrelay")
        .build()
        .map_err(|e| e.to_string())?;
    let result = runtime.block_on(auditrelay::relay::run(config));
    // A commit or a client still blocked past the shutdown bound is abandoned, not waited
    // for: the exit is what a supervisor counts on.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

fn run_query(args: QueryArgs) -> Result<(), String> {
    let reader = StoreReader::open(&args.data_dir).map_err(|e| e.to_string())?;
    let q = Query {
        since: args.since,
        until: args.until,
        host: args.host,
        app: args.app,
        severity_max: args.severity_max,
        source_ip: args.source_ip,
        text: args.text,
        limit: args.limit,
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut line = Vec::new();
    let matched = query::run(&reader, &q, |seq, json| {
        line.clear();
        query::with_seq(seq, json, &mut line);
        line.push(b'\n');
        out.write_all(&line)
    })
    .map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    eprintln!("{matched} records");
    Ok(())
}

fn run_parse(args: ParseArgs) -> io::Result<()> {
    let input: Box<dyn Read> = match &args.file {
        Some(path) if path.as_os_str() != "-" => Box::new(
            File::open(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?,
        ),
        _ => Box::new(io::stdin().lock()),
    };
    let options = ReplayOptions {
        framing: match args.framing {
            FramingArg::Auto => Framing::Auto,
            FramingArg::OctetCounting => Framing::OctetCounting,
            FramingArg::Lf => Framing::Lf,
            FramingArg::Nul => Framing::Nul,
        },
        multiline: args.multiline,
        max_frame: args.max_frame,
        parse: ParseOptions {
            format: match args.format {
                FormatArg::Auto => FormatChoice::Auto,
                FormatArg::Rfc5424 => FormatChoice::Rfc5424,
                FormatArg::Rfc3164 => FormatChoice::Rfc3164,
            },
            default_offset_minutes: args.timezone,
            key_values: args.key_values,
        },
        received_at: args.received_at,
    };
    let summary = replay(input, io::stdout().lock(), &options)?;
    eprint!("{}", summary.render());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run_relay(args),
        Command::CheckConfig { file } => config::load(&file, &Overrides::default())
            .map(|c| {
                println!(
                    "{}: ok, {} listeners, {} destinations",
                    file.display(),
                    c.listeners.len(),
                    c.destinations.len()
                )
            })
            .map_err(|e| e.to_string()),
        Command::Query(args) => run_query(args),
        Command::Digest { data_dir } => StoreReader::open(&data_dir)
            .and_then(|reader| auditrelay::store::digest::digest(&reader))
            .map(|d| println!("{d}"))
            .map_err(|e| e.to_string()),
        Command::Dlq(DlqCommand::List {
            destination,
            data_dir,
        }) => auditrelay::dlq::list(&data_dir, &destination, &mut io::stdout().lock())
            .map(|n| eprintln!("{n} dead letters")),
        Command::Dlq(DlqCommand::Replay {
            destination,
            http,
            token,
        }) => token
            .require()
            .and_then(|token| auditrelay::dlq::replay(http, &destination, &token))
            .map(|answer| println!("{answer}")),
        Command::Cluster(command) => run_cluster(command),
        Command::Parse(args) => match run_parse(args) {
            // The reader went away (`| head`): not a failure of ours.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other.map_err(|e| e.to_string()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("auditrelay: {e}");
            ExitCode::FAILURE
        }
    }
}
