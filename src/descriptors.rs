//! File descriptors: the relay raises its soft `RLIMIT_NOFILE` to the hard limit at start-up
//! (the soft default, often 1024, is less than one listener's default `max_connections`), and
//! checks that what the configuration may open at once fits in it.
//!
//! Invariant the budget keeps, when it fits: the listeners' connection caps, the UDP sockets,
//! the destinations' connections and [`RESERVE`] together stay under the limit, so a flood of
//! connections is refused by the listeners' caps (and counted) before `accept` or RocksDB
//! runs out of descriptors. A budget that does not fit is a warning, not a refusal to start:
//! the caps still hold, and a host whose hard limit is low should still run (with the log
//! saying what to raise).

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

use crate::config::Config;
use crate::ingest::url::Transport;

/// RocksDB's table-file cache, per database (the store and the Raft log each have one): files
/// beyond it are closed and reopened on demand, so the relay's descriptor use stays bounded
/// whatever the store's size.
pub const ROCKSDB_MAX_OPEN_FILES: i32 = 256;
/// The databases that each keep [`ROCKSDB_MAX_OPEN_FILES`] open.
const ROCKSDB_DATABASES: u64 = 2;
/// Everything else: standard streams, the runtime's epoll and event descriptors, RocksDB's
/// WAL, MANIFEST, LOCK and info-log files, the operations endpoint's connections, Raft peer
/// connections, TLS files being reloaded, `flush.sock` and its readers, snapshot files.
const OTHER_DESCRIPTORS: u64 = 256;
/// Descriptors kept back from the listeners' connections.
pub const RESERVE: u64 = ROCKSDB_DATABASES * ROCKSDB_MAX_OPEN_FILES as u64 + OTHER_DESCRIPTORS;

/// The process's open-file limits after [`raise_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns both as they then are
/// (`u64::MAX` for a limit that is infinite).
pub fn raise_limit() -> Limits {
    let mut limit = getrlimit(Resource::Nofile);
    // The kernel keeps the soft limit at or below the hard one: different means lower.
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(soft = ?limit.current, hard = ?limit.maximum, error = %e, "cannot raise the open-file limit");
        }
        limit = getrlimit(Resource::Nofile);
    }
    Limits {
        soft: limit.current.unwrap_or(u64::MAX),
        hard: limit.maximum.unwrap_or(u64::MAX),
    }
}

/// What the configuration may hold open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The stream listeners' `max_connections`, summed.
    pub connections: u64,
    /// UDP sockets and listening sockets.
    pub sockets: u64,
    /// Connections to destinations (`in_flight` each).
    pub destinations: u64,
}

impl Budget {
    pub fn of(config: &Config) -> Budget {
        let mut budget = Budget {
            connections: 0,
            sockets: 0,
            destinations: 0,
        };
        for listener in &config.listeners {
            match listener.url.transport {
                Transport::Udp => budget.sockets += listener.udp_sockets as u64,
                _ => {
                    budget.sockets += 1;
                    budget.connections += listener.max_connections as u64;
                }
            }
        }
        budget.destinations = config.destinations.iter().map(|d| d.in_flight as u64).sum();
        budget
    }

    /// Descriptors needed, [`RESERVE`] included.
    pub fn needed(&self) -> u64 {
        self.connections + self.sockets + self.destinations + RESERVE
    }
}

/// Raises the limit and logs it, and warns (naming the numbers) if the configuration's
/// budget does not fit in it. Called at the start of `auditrelay run`.
pub fn prepare(config: &Config) {
    let budget = Budget::of(config);
    let limits = raise_limit();
    tracing::info!(
        soft = limits.soft,
        hard = limits.hard,
        needed = budget.needed(),
        "open-file limit"
    );
    if budget.needed() > limits.soft {
        tracing::warn!(
            limit = limits.soft,
            needed = budget.needed(),
            connections = budget.connections,
            sockets = budget.sockets,
            destinations = budget.destinations,
            reserve = RESERVE,
            "the listeners' max_connections do not fit in the open-file limit: \
             raise LimitNOFILE (ulimit -Hn) or lower max_connections, or a flood of \
             connections can leave the store without descriptors"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit() {
        let limits = raise_limit();
        assert_eq!(limits.soft, limits.hard);
    }

    #[test]
    fn the_budget_counts_stream_connections_sockets_destinations_and_the_reserve() {
        let config = crate::config::from_flags(&crate::config::Overrides {
            listen: vec!["tcp://127.0.0.1:1".into(), "udp://127.0.0.1:2".into()],
            forward: vec!["syslog+tcp://127.0.0.1:3?in_flight=3".into()],
            ..Default::default()
        })
        .unwrap();
        let budget = Budget::of(&config);
        assert_eq!(budget.connections, 1024);
        assert_eq!(budget.destinations, 3);
        let udp_sockets = config.listeners[1].udp_sockets as u64;
        assert_eq!(budget.sockets, 1 + udp_sockets);
        assert_eq!(budget.needed(), 1024 + 1 + udp_sockets + 3 + 768);
    }
}
