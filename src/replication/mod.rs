//! Replication: the write path's [`CommitLog`] backed by Raft (openraft, pinned; every call
//! to it stays in this module). A batch is one Raft entry, appended to each node's own
//! fsync'd log (`log_store`) and applied to the audit store (`state_machine`) in log order,
//! so that apply assigns the same seqs on every node. A relay without `[cluster]` is a
//! one-member cluster on the same path.
//!
//! Any node takes writes: a follower hands its batches to the leader over the peer port and
//! answers its senders once the leader says they are committed. Forwarding runs only where
//! [`Replica::leader`] says so.

mod admission;
pub mod config;
mod entry_codec;
mod frame;
mod identity;
mod log_store;
mod metrics;
mod pack;
mod peer;
mod snapshot_dir;
mod state_machine;
mod types;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, ChangeMembers, Raft, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use admission::{Claim, Refusal, View};
pub use config::{ClusterConfig, ClusterSection};
pub use frame::MAX_BATCH_BYTES;
use log_store::LogStore;
use peer::{Caller, HandleError, Kind, PeerClient, PeerTls};
use state_machine::StateMachine;
use types::{decode, encode, NodeId, Request, Response, TypeConfig};

use crate::shutdown::{self, ShutdownTrigger};
use crate::store::{Control, SeqRange, Store, StoreError};
use crate::write_path::{CommitLog, RecordBatch};

/// How long a write waits for a leader before the write path is told to retry.
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the leader may take to commit a handed-over batch.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(15);
/// How long an added node may take to catch up before it becomes a voter.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(600);

/// `auditrelay cluster add|remove`, carried out by the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Admin {
    Add { id: NodeId, address: String },
    Remove { id: NodeId },
}

/// This node's part of the cluster.
pub struct Replica {
    id: NodeId,
    /// The configured initial members (only this node when joining): whom a node without a
    /// membership yet takes votes from.
    initial: BTreeSet<NodeId>,
    raft: Raft<TypeConfig>,
    store: Arc<Store>,
    /// Idle connections to the leader (by node id), for handing over writes and admin
    /// requests: a call takes one (or makes one) and puts it back after, so the write path's
    /// batches in flight go to the leader side by side.
    peers: std::sync::Mutex<HashMap<NodeId, Vec<PeerClient>>>,
    tls: Option<PeerTls>,
    leader: watch::Receiver<bool>,
    ready: watch::Receiver<bool>,
    failed: watch::Receiver<Option<String>>,
    stop: ShutdownTrigger,
}

/// How long one snapshot chunk's call may take, the install after the last chunk included.
const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 15 * 60 * 1000;

fn raft_config(c: &ClusterConfig) -> Result<openraft::Config, String> {
    openraft::Config {
        cluster_name: "auditrelay".into(),
        heartbeat_interval: c.heartbeat_ms,
        election_timeout_min: c.election_timeout_ms,
        election_timeout_max: c.election_timeout_ms * 2,
        // One RPC per snapshot chunk, a few MB; but the last one's answer waits for the
        // install, which rewrites the whole store (minutes for a large one, more on a loaded
        // machine). When this timer runs out, openraft abandons the transfer and starts it
        // again from offset 0 with a fresh snapshot (openraft 0.9.25,
        // network/snapshot_transport.rs): with 30 s, a follower whose install takes longer
        // is sent the snapshot again after each install, and never counts as caught up.
        install_snapshot_timeout: INSTALL_SNAPSHOT_TIMEOUT_MS,
        snapshot_max_chunk_size: 4 << 20,
        // Each entry is a batch of up to a MB or so.
        max_payload_entries: 16,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(c.snapshot_every),
        max_in_snapshot_log_to_keep: c.log_keep,
        ..Default::default()
    }
    .validate()
    .map_err(|e| format!("cluster settings: {e}"))
}

impl Replica {
    /// Opens the Raft log, starts Raft over `store`, serves peers (when the node has a peer
    /// port), and forms the cluster if this node is new and not joining one.
    pub async fn start(
        cluster: &ClusterConfig,
        data_dir: &Path,
        store: Arc<Store>,
    ) -> Result<Arc<Replica>, String> {
        let log = LogStore::open(data_dir)?;
        let wal = log.clone();
        let sm = StateMachine::open(store.clone(), data_dir)?;
        let tls = cluster.tls.as_ref().map(PeerTls::new).transpose()?;
        let raft = Raft::new(
            cluster.node_id,
            Arc::new(raft_config(cluster)?),
            peer::Network { tls: tls.clone() },
            log,
            sm,
        )
        .await
        .map_err(|e| format!("cannot start Raft: {e}"))?;
        let (stop, stopped) = shutdown::channel();
        let (leader_tx, leader) = watch::channel(false);
        let (ready_tx, ready) = watch::channel(false);
        let (failed_tx, failed) = watch::channel(None);
        metrics::describe();
        tokio::spawn(metrics::follow(
            raft.clone(),
            wal,
            cluster.election_timeout_ms,
            metrics::Flags {
                leader: leader_tx,
                ready: ready_tx,
                failed: failed_tx,
            },
            stopped.clone(),
        ));
        let replica = Arc::new(Replica {
            id: cluster.node_id,
            initial: cluster.members.keys().copied().collect(),
            raft,
            store,
            peers: std::sync::Mutex::new(HashMap::new()),
            tls: tls.clone(),
            leader,
            ready,
            failed,
            stop,
        });
        if let Some(addr) = cluster.listen {
            let listener = peer::bind(addr)
                .await
                .map_err(|e| format!("cluster.listen {addr}: {e}"))?;
            tracing::info!(%addr, node = cluster.node_id, tls = tls.is_some(), "peer port");
            if tls.is_none() && cluster.insecure_plaintext_peers {
                tracing::warn!(%addr, "insecure_plaintext_peers: the peer port is plain TCP and checks no identity; anyone who reaches it can write records, change membership and replace the store");
            } else if tls.is_none() {
                tracing::warn!(%addr, "the peer port is plain TCP on loopback and checks no identity; set cluster.cert, cluster.key and cluster.ca for mutual TLS");
            }
            tokio::spawn(peer::serve(listener, replica.clone(), tls, stopped));
        }
        if !cluster.join {
            let members: BTreeMap<NodeId, BasicNode> = cluster
                .members
                .iter()
                .map(|(id, addr)| (*id, BasicNode::new(addr)))
                .collect();
            match replica.raft.initialize(members).await {
                Ok(()) => tracing::info!(members = ?cluster.members, "formed a new cluster"),
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(format!("cannot form the cluster: {e}")),
            }
        }
        Ok(replica)
    }

    /// The peer port's TLS configuration, for reloading on SIGHUP and file changes.
    pub fn tls_reloader(&self) -> Option<Arc<crate::ingest::tls::TlsReloader>> {
        self.tls.as_ref().map(PeerTls::reloader)
    }

    /// True while this node leads (and so runs forwarding).
    pub fn leader(&self) -> watch::Receiver<bool> {
        self.leader.clone()
    }

    /// True while this node is part of a working majority.
    pub fn ready(&self) -> watch::Receiver<bool> {
        self.ready.clone()
    }

    /// Why Raft stopped for good (a storage error: disk full, fsync failure), once it has:
    /// the node can then never commit again, and should exit so that it is restarted.
    pub fn failed(&self) -> watch::Receiver<Option<String>> {
        self.failed.clone()
    }

    /// Stops Raft and the peer port: last, after the write path has committed everything.
    pub async fn stop(&self) {
        self.stop.trigger();
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "Raft did not stop cleanly");
        }
    }

    fn leader_now(&self) -> Option<(NodeId, String)> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let id = m.current_leader?;
        let addr = m
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
            .unwrap_or_default();
        Some((id, addr))
    }

    /// Sends `body` to the leader `id` at `addr` and decodes its answer.
    async fn call_leader<A: serde::de::DeserializeOwned>(
        &self,
        id: NodeId,
        addr: &str,
        kind: Kind,
        body: &[u8],
        timeout: Duration,
    ) -> Result<A, String> {
        let idle = {
            let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
            peers.get_mut(&id).and_then(Vec::pop)
        };
        let mut client = idle
            .filter(|c| c.addr() == addr)
            .unwrap_or_else(|| PeerClient::new(addr, id, self.tls.clone()));
        let answer = client
            .call(kind, body, timeout)
            .await
            .map_err(|e| format!("leader {id} at {addr}: {e}"))?;
        self.peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id)
            .or_default()
            .push(client);
        decode(&answer)
    }

    /// Proposes `request` here if this node leads, else hands it to the leader; retries
    /// while there is no leader or leadership moves, up to [`PROPOSE_TIMEOUT`].
    async fn propose(&self, request: Request) -> Result<Response, String> {
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        let mut encoded: Option<Vec<u8>> = None;
        loop {
            let outcome = match self.leader_now() {
                // A reference, as a write refused on a lost leadership goes on to the new leader.
                Some((id, _)) if id == self.id => self.write_here(request.clone()).await,
                Some((id, addr)) => {
                    if encoded.is_none() {
                        encoded = Some(encode(&request)?);
                    }
                    let body = encoded.as_deref().unwrap_or_default();
                    // Either the call failed or the leader answered with its own verdict.
                    self.call_leader::<Result<Response, String>>(
                        id,
                        &addr,
                        Kind::Write,
                        body,
                        FORWARD_TIMEOUT,
                    )
                    .await
                    .and_then(|answer| answer)
                }
                None => Err("no leader".to_string()),
            };
            match outcome {
                Ok(response) => return Ok(response),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, "proposal not taken; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Proposes on this node, which must be the leader.
    async fn write_here(&self, request: Request) -> Result<Response, String> {
        match self.raft.client_write(request).await {
            Ok(r) => Ok(r.data),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Blocks the calling (non-async) thread on `future`: the write path commits from
    /// blocking threads.
    fn block_on<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        let handle = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| handle.block_on(future))
    }

    /// `auditrelay cluster add|remove`: carried out here when leading, else by the leader.
    pub async fn admin(&self, request: Admin) -> Result<String, String> {
        match self.leader_now() {
            Some((id, _)) if id == self.id => self.admin_here(request).await,
            Some((id, addr)) => {
                let body = encode(&request)?;
                self.call_leader::<Result<String, String>>(
                    id,
                    &addr,
                    Kind::Admin,
                    &body,
                    ADMIN_TIMEOUT,
                )
                .await?
            }
            None => Err("no leader: the cluster has no working majority".into()),
        }
    }

    async fn admin_here(&self, request: Admin) -> Result<String, String> {
        let err = |e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>| e.to_string();
        match request {
            Admin::Add { id, address } => {
                let highest = state_machine::highest_node_id(&self.store)?;
                if id <= highest {
                    return Err(format!(
                        "node id {id} is or was in use: ids are never reused (use {} or more)",
                        highest + 1
                    ));
                }
                self.raft
                    .add_learner(id, BasicNode::new(&address), true)
                    .await
                    .map_err(err)?;
                self.raft
                    .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                    .await
                    .map_err(err)?;
                Ok(format!("node {id} at {address} is a voting member"))
            }
            Admin::Remove { id } => {
                self.raft
                    .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                    .await
                    .map_err(err)?;
                Ok(format!("node {id} is no longer a member"))
            }
        }
    }

    /// `auditrelay cluster status`: this node's view, as JSON.
    pub fn status(&self) -> serde_json::Value {
        metrics::status(&self.raft.metrics().borrow())
    }

    /// Names the cluster if no leader has yet: done by a leader before forwarding starts.
    pub async fn ensure_cluster_id(&self) -> Result<String, String> {
        if let Some(id) = self.store.cluster_id() {
            return Ok(id);
        }
        let id = crate::store::meta::new_cluster_id();
        self.propose(Request::Control(vec![Control::SetClusterId { id }]))
            .await?;
        self.store
            .cluster_id()
            .ok_or_else(|| "the cluster id was not applied".to_string())
    }
}

impl Replica {
    /// What this node knows of the cluster, for [`admission::admit`].
    fn view(&self) -> View {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        View {
            members: membership.nodes().map(|(id, _)| *id).collect(),
            initial: self.initial.clone(),
            vote: m.vote,
        }
    }

    /// Refuses `claim` unless `caller` may make it; a plaintext caller cannot be checked.
    fn admit(&self, caller: Caller, claim: Claim<'_>) -> Result<(), HandleError> {
        let Caller::Node(sender) = caller else {
            return Ok(());
        };
        admission::admit(sender, claim, &self.view()).map_err(|refusal| {
            let detail = match (refusal, claim.vote) {
                (Refusal::WrongNode, Some(vote)) => {
                    format!(
                        "node {sender}'s certificate, request for {}",
                        vote.leader_id()
                    )
                }
                _ => format!("from node {sender}"),
            };
            HandleError::Refused(refusal, detail)
        })
    }
}

impl peer::Handler for Replica {
    async fn handle(
        &self,
        caller: Caller,
        kind: Kind,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, HandleError> {
        let answer = match kind {
            Kind::Append => {
                let rpc: openraft::raft::AppendEntriesRequest<TypeConfig> = decode(&body)?;
                self.admit(caller, Claim::raft(kind, &rpc.vote))?;
                encode(&self.raft.append_entries(rpc).await)
            }
            Kind::Vote => {
                let rpc: openraft::raft::VoteRequest<NodeId> = decode(&body)?;
                self.admit(caller, Claim::raft(kind, &rpc.vote))?;
                encode(&self.raft.vote(rpc).await)
            }
            Kind::Snapshot => {
                let rpc: openraft::raft::InstallSnapshotRequest<TypeConfig> = decode(&body)?;
                self.admit(caller, Claim::raft(kind, &rpc.vote))?;
                encode(&self.raft.install_snapshot(rpc).await)
            }
            Kind::Write => {
                self.admit(caller, Claim { kind, vote: None })?;
                encode(&self.write_here(decode(&body)?).await)
            }
            Kind::Admin => {
                self.admit(caller, Claim { kind, vote: None })?;
                encode(&self.admin(decode(&body)?).await)
            }
        };
        Ok(answer?)
    }
}

impl CommitLog for Replica {
    fn commit(&self, batch: &RecordBatch) -> Result<SeqRange, StoreError> {
        let request = Request::Records(batch.clone());
        match self.block_on(self.propose(request)) {
            Ok(response) => response.seqs().ok_or_else(|| {
                StoreError::Write("a record batch was answered without seqs".into())
            }),
            Err(e) => Err(StoreError::Write(format!(
                "not committed by the cluster: {e}"
            ))),
        }
    }

    fn control(&self, ops: &[Control]) -> Result<(), StoreError> {
        self.block_on(self.propose(Request::Control(ops.to_vec())))
            .map(|_| ())
            .map_err(|e| StoreError::Write(format!("not committed by the cluster: {e}")))
    }

    fn next_seq(&self) -> u64 {
        self.store.next_seq()
    }
}
