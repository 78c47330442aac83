//! A replicated cluster of real `auditrelay` processes on 127.0.0.1: each node has its own
//! TOML file (peer port, a RELP and a TCP listener), data directory, operations endpoint and
//! log file (beside the data directory, so a node whose disk fills can still log). The nodes
//! are started together and waited for together; any of them can be killed, stopped and
//! restarted; replicas are compared with `auditrelay digest`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use super::{free_port, http_get, poll, wait_for, Relay, BIN};

/// How long nodes may take to start, elect a leader and agree on it.
pub const READY_LIMIT: Duration = Duration::from_secs(60);

/// What a node is started with besides its ports.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// Lines added to the node's `[cluster]` section, e.g. `snapshot_every = 20`.
    pub cluster_toml: String,
    /// Flags added to `auditrelay run`, e.g. `--forward=syslog+tcp://127.0.0.1:601`.
    pub args: Vec<String>,
    /// The data directory; `<work>/node<ID>/data` when not given.
    pub data_dir: Option<PathBuf>,
    /// Whole sections added at the end of the node's TOML file, e.g. `[store]` settings.
    pub sections: String,
}

impl NodeOptions {
    /// Only these lines in the `[cluster]` section.
    pub fn cluster(toml: &str) -> NodeOptions {
        NodeOptions {
            cluster_toml: toml.to_string(),
            ..NodeOptions::default()
        }
    }
}

/// The ports one node binds on 127.0.0.1.
#[derive(Debug, Clone, Copy)]
struct Ports {
    peer: u16,
    http: u16,
    relp: u16,
    tcp: u16,
}

/// One node of the cluster.
pub struct Node {
    /// The Raft node id: the node at index `i` of a cluster started together has id `i + 1`.
    pub id: u64,
    pub peer_port: u16,
    /// The RELP listener (named `relp`).
    pub relp_port: u16,
    /// The plain TCP listener (named `tcp`).
    pub tcp_port: u16,
    /// The node's TOML file.
    pub config: PathBuf,
    pub relay: Relay,
}

impl Node {
    /// The address its peers reach it at (`cluster.listen`).
    pub fn peer_address(&self) -> String {
        format!("127.0.0.1:{}", self.peer_port)
    }

    /// Whether the process was started and not killed or stopped since.
    pub fn is_running(&self) -> bool {
        self.relay.child.is_some()
    }

    /// `GET /cluster/status`, when the node answers.
    pub fn status(&self) -> Option<serde_json::Value> {
        match http_get(self.relay.http, "/cluster/status")? {
            (200, body) => serde_json::from_str(&body).ok(),
            _ => None,
        }
    }

    /// Messages its own listeners accepted since it last started.
    pub fn accepted(&self) -> f64 {
        self.relay.metric("auditrelay_accepted_messages_total", &[])
    }

    /// Waits until its listeners have accepted at least `n` messages since it last started.
    pub fn wait_accepted(&self, n: u64, limit: Duration) {
        wait_for(
            &format!("{n} messages accepted by node {}", self.id),
            limit,
            || (self.accepted() >= n as f64).then_some(()),
        );
    }

    /// Its `auditrelay digest` line; None while the store cannot be read (e.g. a snapshot
    /// being installed).
    pub fn digest(&self) -> Option<String> {
        try_digest(&self.relay.data_dir)
    }

    pub fn log_text(&self) -> String {
        self.relay.log_text()
    }
}

/// Nodes started together as one cluster, plus any added later.
pub struct Cluster {
    /// Where each node's directory (`node<ID>`) is.
    pub work: PathBuf,
    pub nodes: Vec<Node>,
    ports_taken: HashSet<u16>,
}

impl Cluster {
    /// Starts `n` nodes (ids 1..=n), each with `cluster_toml` in its `[cluster]` section, and
    /// waits until all of them are ready.
    pub fn start(work: &Path, n: usize, cluster_toml: &str) -> Cluster {
        Cluster::start_with(work, vec![NodeOptions::cluster(cluster_toml); n])
    }

    /// Starts one node per entry of `options` (ids 1, 2, …), all before waiting for any, then
    /// waits until all of them are ready.
    pub fn start_with(work: &Path, options: Vec<NodeOptions>) -> Cluster {
        let mut cluster = Cluster::launch_all(work, options);
        let all: Vec<usize> = (0..cluster.nodes.len()).collect();
        cluster.wait_ready_all(&all);
        cluster
    }

    /// Starts one node per entry of `options` (ids 1, 2, …) without waiting for any.
    pub fn launch_all(work: &Path, options: Vec<NodeOptions>) -> Cluster {
        let mut cluster = Cluster {
            work: work.to_path_buf(),
            nodes: Vec::new(),
            ports_taken: HashSet::new(),
        };
        let ports: Vec<Ports> = options.iter().map(|_| cluster.pick_ports()).collect();
        let members: Vec<(u64, u16)> = ports.iter().zip(1..).map(|(p, id)| (id, p.peer)).collect();
        for ((options, ports), id) in options.into_iter().zip(ports).zip(1..) {
            let toml = node_toml(id, ports, &options.cluster_toml, &members, false);
            let node = cluster.launch(id, ports, &toml, options);
            cluster.nodes.push(node);
        }
        cluster
    }

    /// Starts a node with `join = true` and id `id` on fresh ports, without waiting (it is
    /// ready only once `auditrelay cluster add` made it a member). Returns its index.
    pub fn launch_joining(&mut self, id: u64, options: NodeOptions) -> usize {
        let ports = self.pick_ports();
        let toml = node_toml(id, ports, &options.cluster_toml, &[], true);
        let node = self.launch(id, ports, &toml, options);
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Four ports no other node of this cluster was given.
    fn pick_ports(&mut self) -> Ports {
        let mut next = || loop {
            let port = free_port();
            if self.ports_taken.insert(port) {
                return port;
            }
        };
        Ports {
            peer: next(),
            http: next(),
            relp: next(),
            tcp: next(),
        }
    }

    /// Writes the node's TOML file and spawns it.
    fn launch(&self, id: u64, ports: Ports, toml: &str, options: NodeOptions) -> Node {
        let dir = self.work.join(format!("node{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("relay.toml");
        std::fs::write(&config, format!("{toml}\n{}", options.sections)).unwrap();
        let data_dir = options.data_dir.unwrap_or_else(|| dir.join("data"));
        let http = SocketAddr::from(([127, 0, 0, 1], ports.http));
        let mut args = vec![format!("--config={}", config.display())];
        args.extend(options.args);
        let relay = Relay::launch(&data_dir, http, &dir.join("relay.log"), &args);
        Node {
            id,
            peer_port: ports.peer,
            relp_port: ports.relp,
            tcp_port: ports.tcp,
            config,
            relay,
        }
    }

    /// Waits until every node in `which` answers `/readyz` with 200; fails at once, with the
    /// log, if one of them exited.
    pub fn wait_ready_all(&mut self, which: &[usize]) {
        let deadline = Instant::now() + READY_LIMIT;
        loop {
            let mut waiting = Vec::new();
            for &i in which {
                let node = &mut self.nodes[i];
                if let Some(status) = node.relay.exit_status() {
                    panic!(
                        "node {} exited ({status}) before it was ready; end of its log:\n{}",
                        node.id,
                        log_tail(&node.relay.log_text(), 40)
                    );
                }
                if !node.relay.is_ready() {
                    waiting.push(node.id);
                }
            }
            if waiting.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nodes {waiting:?} not ready after {READY_LIMIT:?} (logs under {})",
                self.work.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until node `i` is ready.
    pub fn wait_ready(&mut self, i: usize) {
        self.wait_ready_all(&[i]);
    }

    /// Indexes of the nodes whose process runs (not killed or stopped by the test).
    pub fn live(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_running())
            .collect()
    }

    /// The index of the leader: polls `/cluster/status` on the live nodes until exactly one
    /// says it is the leader and every live node names it as leader.
    pub fn leader_index(&self) -> usize {
        wait_for(
            "one leader that every live node follows",
            READY_LIMIT,
            || self.agreed_leader(),
        )
    }

    fn agreed_leader(&self) -> Option<usize> {
        let mut leading = Vec::new();
        let mut followed = HashSet::new();
        for i in self.live() {
            let status = self.nodes[i].status()?;
            if status["role"] == "leader" {
                leading.push(i);
            }
            followed.insert(status["leader"].as_u64()?);
        }
        let &[leader] = leading.as_slice() else {
            return None;
        };
        (followed.len() == 1 && followed.contains(&self.nodes[leader].id)).then_some(leader)
    }

    /// SIGKILL node `i`.
    pub fn kill9(&mut self, i: usize) {
        self.nodes[i].relay.kill9();
    }

    /// SIGTERM node `i` and wait until it exits.
    pub fn terminate(&mut self, i: usize) -> ExitStatus {
        self.nodes[i].relay.terminate()
    }

    /// Starts node `i` again (same ports, data and configuration) and waits until it is ready.
    pub fn restart(&mut self, i: usize) {
        self.nodes[i].relay.spawn();
        self.wait_ready(i);
    }

    /// The digest line of every live node, by node id.
    pub fn digests(&self) -> Vec<(u64, Option<String>)> {
        self.live()
            .into_iter()
            .map(|i| (self.nodes[i].id, self.nodes[i].digest()))
            .collect()
    }

    /// Prints what each node in `which` says of itself and the last `lines` of its log, to
    /// show where a test that is about to fail stopped.
    pub fn report(&self, which: &[usize], lines: usize) {
        for &i in which {
            let node = &self.nodes[i];
            eprintln!(
                "node {}: status {:?}\n{}",
                node.id,
                node.status(),
                log_tail(&node.log_text(), lines)
            );
        }
    }

    /// Waits until node `i` has accepted `n` messages. Unlike [`Node::wait_accepted`], a
    /// timeout first prints what every node says of itself, to show where the cluster stalled.
    pub fn wait_accepted(&self, i: usize, n: u64, limit: Duration) {
        let node = &self.nodes[i];
        let every = Duration::from_millis(100);
        if poll(limit, every, || (node.accepted() >= n as f64).then_some(())).is_none() {
            let all: Vec<usize> = (0..self.nodes.len()).collect();
            self.report(&all, 30);
            panic!(
                "node {} accepted {} of {n} messages within {limit:?}",
                node.id,
                node.accepted()
            );
        }
    }

    /// Waits until the nodes in `which` all print the same digest line; returns it.
    pub fn wait_same_digest(&self, which: &[usize], limit: Duration) -> String {
        let mut lines = Vec::new();
        let same = poll(limit, Duration::from_secs(1), || {
            lines = which.iter().map(|&i| self.nodes[i].digest()).collect();
            same_line(&lines)
        });
        same.unwrap_or_else(|| {
            let ids: Vec<u64> = which.iter().map(|&i| self.nodes[i].id).collect();
            self.report(which, 40);
            panic!(
                "nodes {ids:?} did not come to print the same digest within {limit:?}; last: {lines:#?}"
            );
        })
    }
}

/// The line, if every entry is that same line.
fn same_line(lines: &[Option<String>]) -> Option<String> {
    let first = lines.first()?.as_ref()?;
    if lines.iter().all(|l| l.as_ref() == Some(first)) {
        Some(first.clone())
    } else {
        None
    }
}

/// A node's TOML file: a RELP and a TCP listener, and `[cluster]` with this node, the other
/// `members` (id, peer port) as peers, `join` and the `extra` lines.
fn node_toml(id: u64, ports: Ports, extra: &str, members: &[(u64, u16)], join: bool) -> String {
    let mut toml = format!(
        r#"[[listener]]
name = "relp"
url = "relp://127.0.0.1:{relp}"

[[listener]]
name = "tcp"
url = "tcp://127.0.0.1:{tcp}"

[cluster]
node_id = {id}
listen = "127.0.0.1:{peer}"
join = {join}
{extra}
"#,
        relp = ports.relp,
        tcp = ports.tcp,
        peer = ports.peer,
    );
    for (peer_id, peer_port) in members {
        if *peer_id != id {
            toml.push_str(&format!(
                "\n[[cluster.peer]]\nid = {peer_id}\naddress = \"127.0.0.1:{peer_port}\"\n"
            ));
        }
    }
    toml
}

/// `auditrelay digest --data-dir DIR` (works while the relay runs); None if it failed.
pub fn try_digest(data_dir: &Path) -> Option<String> {
    let out = Command::new(&*BIN)
        .arg("digest")
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .ok()?;
    if out.status.success() {
        Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        None
    }
}

/// The `records=N` of a digest line.
pub fn digest_records(line: &str) -> u64 {
    line.split_whitespace()
        .find_map(|field| field.strip_prefix("records="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a digest line: {line:?}"))
}

/// The last `lines` lines of `text`.
pub fn log_tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
