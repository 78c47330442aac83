//! Raft's state as metrics and as `auditrelay cluster status`; also decides the two flags the
//! relay acts on: whether this node leads (forwarding runs there) and whether it is ready
//! (part of a working majority: `/readyz`).

use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, gauge};
use openraft::error::Fatal;
use openraft::{Raft, RaftMetrics, ServerState};
use serde_json::json;
use tokio::sync::watch;

use super::admission::Refusal;
use super::log_store::LogStore;
use super::types::{NodeId, TypeConfig};
use crate::shutdown::Shutdown;

pub const ROLE: &str = "auditrelay_raft_role";
pub const TERM: &str = "auditrelay_raft_term";
pub const LAST_LOG_INDEX: &str = "auditrelay_raft_last_log_index";
pub const APPLIED_INDEX: &str = "auditrelay_raft_applied_index";
pub const COMMIT_INDEX: &str = "auditrelay_raft_commit_index";
pub const REPLICATION_LAG: &str = "auditrelay_raft_replication_lag_entries";
pub const ELECTIONS: &str = "auditrelay_raft_elections_total";
pub const LEADER_CHANGES: &str = "auditrelay_raft_leader_changes_total";
pub const MAJORITY: &str = "auditrelay_raft_majority_reachable";
pub const RUNNING: &str = "auditrelay_raft_running";
pub const LOG_SYNCS: &str = "auditrelay_raft_log_syncs_total";
pub const PEER_REFUSED: &str = "auditrelay_peer_refused_total";

const ROLES: [(ServerState, &str); 5] = [
    (ServerState::Leader, "leader"),
    (ServerState::Follower, "follower"),
    (ServerState::Candidate, "candidate"),
    (ServerState::Learner, "learner"),
    (ServerState::Shutdown, "shutdown"),
];

pub fn describe() {
    describe_gauge!(
        ROLE,
        "1 for this node's Raft role (leader, follower, candidate, learner, shutdown)."
    );
    describe_gauge!(TERM, "The current Raft term.");
    describe_gauge!(
        LAST_LOG_INDEX,
        "Index of the last entry in this node's Raft log."
    );
    describe_gauge!(
        APPLIED_INDEX,
        "Index of the last entry applied to the store."
    );
    describe_gauge!(
        COMMIT_INDEX,
        "Index of the last entry known committed (in a majority's fsync'd logs)."
    );
    describe_gauge!(
        REPLICATION_LAG,
        "On the leader: entries each peer's log is behind the leader's."
    );
    describe_counter!(
        LOG_SYNCS,
        "fsyncs of the Raft log's WAL (each covers one append of one or more batches)."
    );
    describe_counter!(ELECTIONS, "Elections this node started (became candidate).");
    describe_counter!(LEADER_CHANGES, "Times this node saw the leader change.");
    describe_gauge!(
        MAJORITY,
        "1 while this node is part of a working majority (see /readyz)."
    );
    describe_gauge!(
        RUNNING,
        "0 once Raft stopped on a storage error (disk full, fsync failure): the node no longer acknowledges."
    );
    describe_counter!(
        PEER_REFUSED,
        "Peer connections and requests refused, by reason (handshake, no_node_id, not_member, wrong_node, frame_too_large, timeout, connections)."
    );
    for refusal in Refusal::ALL {
        counter!(PEER_REFUSED, "reason" => refusal.label()).absolute(0);
    }
    for (_, role) in ROLES {
        gauge!(ROLE, "role" => role).set(0.0);
    }
    counter!(ELECTIONS).absolute(0);
    counter!(LOG_SYNCS).absolute(0);
    counter!(LEADER_CHANGES).absolute(0);
    gauge!(MAJORITY).set(0.0);
    gauge!(RUNNING).set(1.0);
    gauge!(COMMIT_INDEX).set(0.0);
    gauge!(APPLIED_INDEX).set(0.0);
}

/// Counts one refusal at the peer port.
pub fn peer_refused(refusal: Refusal) {
    counter!(PEER_REFUSED, "reason" => refusal.label()).increment(1);
}

/// Whether the node with these metrics is part of a working majority: a leader that heard
/// from a quorum within an election timeout, or a follower that knows its leader.
fn has_majority(m: &RaftMetrics<NodeId, openraft::BasicNode>, election_timeout_ms: u64) -> bool {
    if m.running_state.is_err() {
        return false;
    }
    match m.state {
        ServerState::Leader => m
            .millis_since_quorum_ack
            .is_some_and(|ms| ms <= election_timeout_ms),
        ServerState::Follower | ServerState::Learner => m.current_leader.is_some(),
        _ => false,
    }
}

/// The flags [`follow`] sets.
pub struct Flags {
    /// This node leads.
    pub leader: watch::Sender<bool>,
    /// This node is part of a working majority.
    pub ready: watch::Sender<bool>,
    /// Why Raft stopped for good (a storage error), once it has.
    pub failed: watch::Sender<Option<String>>,
}

/// Follows Raft's metrics until stopped: exports them and sets the flags.
pub async fn follow(
    raft: Raft<TypeConfig>,
    log: LogStore,
    election_timeout_ms: u64,
    flags: Flags,
    mut stop: Shutdown,
) {
    let Flags {
        leader,
        ready,
        failed,
    } = flags;
    let mut metrics = raft.metrics();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last_state = None;
    let mut last_leader = None;
    let mut reported_failure = false;
    loop {
        let m = metrics.borrow_and_update().clone();
        for (state, role) in ROLES {
            gauge!(ROLE, "role" => role).set(if m.state == state { 1.0 } else { 0.0 });
        }
        gauge!(TERM).set(m.current_term as f64);
        counter!(LOG_SYNCS).absolute(log.wal_syncs());
        gauge!(LAST_LOG_INDEX).set(m.last_log_index.unwrap_or(0) as f64);
        gauge!(APPLIED_INDEX).set(m.last_applied.map_or(0, |l| l.index) as f64);
        gauge!(COMMIT_INDEX).set(log.commit_index() as f64);
        if let Some(replication) = &m.replication {
            let last = m.last_log_index.unwrap_or(0);
            for (peer, matched) in replication {
                let lag = last.saturating_sub(matched.map_or(0, |l| l.index));
                gauge!(REPLICATION_LAG, "peer" => peer.to_string()).set(lag as f64);
            }
        }
        if last_state != Some(m.state) && m.state == ServerState::Candidate {
            counter!(ELECTIONS).increment(1);
        }
        if last_leader != Some(m.current_leader) {
            if last_leader.is_some() {
                counter!(LEADER_CHANGES).increment(1);
            }
            tracing::info!(leader = ?m.current_leader, term = m.current_term, state = ?m.state, "Raft leader");
        }
        last_state = Some(m.state);
        last_leader = Some(m.current_leader);
        // Stopped is the clean end at shutdown; anything else is a failure.
        let failure = match &m.running_state {
            Ok(()) | Err(Fatal::Stopped) => None,
            Err(e) => Some(e),
        };
        if let Some(e) = failure {
            gauge!(RUNNING).set(0.0);
            if !reported_failure {
                tracing::error!(error = %e, "Raft stopped: this node no longer acknowledges writes");
                reported_failure = true;
                failed.send_replace(Some(e.to_string()));
            }
        }
        let majority = has_majority(&m, election_timeout_ms);
        gauge!(MAJORITY).set(if majority { 1.0 } else { 0.0 });
        ready.send_if_modified(|r| std::mem::replace(r, majority) != majority);
        let leads = m.state == ServerState::Leader && m.running_state.is_ok();
        leader.send_if_modified(|l| std::mem::replace(l, leads) != leads);
        tokio::select! {
            r = metrics.changed() => if r.is_err() { return },
            _ = tick.tick() => {}
            _ = stop.wait() => return,
        }
    }
}

/// This node's view of the cluster.
pub fn status(m: &RaftMetrics<NodeId, openraft::BasicNode>) -> serde_json::Value {
    let membership = m.membership_config.membership();
    let voters: Vec<NodeId> = membership.voter_ids().collect();
    let members: Vec<serde_json::Value> = membership
        .nodes()
        .map(|(id, node)| json!({"id": id, "address": node.addr, "voter": voters.contains(id)}))
        .collect();
    let role = ROLES
        .iter()
        .find(|(s, _)| *s == m.state)
        .map_or("unknown", |(_, r)| *r);
    let replication = m.replication.as_ref().map(|r| {
        r.iter()
            .map(|(id, matched)| (id.to_string(), json!(matched.map(|l| l.index))))
            .collect::<serde_json::Map<_, _>>()
    });
    json!({
        "node_id": m.id,
        "role": role,
        "term": m.current_term,
        "leader": m.current_leader,
        "last_log_index": m.last_log_index,
        "applied_index": m.last_applied.map(|l| l.index),
        "snapshot_index": m.snapshot.map(|l| l.index),
        "members": members,
        "replication": replication,
        "running": m.running_state.is_ok(),
    })
}
