//! The `auditrelay` command.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use auditrelay::replay::{replay, ReplayOptions};
use auditrelay_parsers::framing::Framing;
use auditrelay_parsers::timestamp::{parse_rfc3339_strict, DateTime};
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
    /// Frame and parse a captured byte stream; print one JSON record per frame on stdout and a
    /// summary on stderr.
    Parse(ParseArgs),
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

fn parse_offset(text: &str) -> Result<i16, String> {
    let err = || format!("expected an offset such as +01:00 or -0500, got {text:?}");
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(err()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(err());
    }
    let hours: i16 = digits[..2].parse().map_err(|_| err())?;
    let minutes: i16 = digits[2..].parse().map_err(|_| err())?;
    if hours > 23 || minutes > 59 {
        return Err(err());
    }
    Ok(sign * (hours * 60 + minutes))
}

fn parse_received_at(text: &str) -> Result<DateTime, String> {
    match parse_rfc3339_strict(text.as_bytes()) {
        Some((dt, [])) => {
            let micros = dt.unix_seconds() * 1_000_000 + i64::from(dt.nanos / 1000);
            Ok(DateTime::from_unix_micros(micros))
        }
        _ => Err(format!(
            "expected an RFC 3339 time such as 2026-01-01T00:00:00Z, got {text:?}"
        )),
    }
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
        Command::Parse(args) => run_parse(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`| head`): not a failure of ours.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("auditrelay: {e}");
            ExitCode::FAILURE
        }
    }
}
