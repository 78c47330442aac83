//! `[cluster]`: this node's id, where its peers reach it, and the initial members. Without the
//! section the relay is a one-member cluster (node 1) on the same code path, with no peer port.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// The section as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// This node's id: a positive number, never reused for another node.
    pub node_id: Option<u64>,
    /// Address:port the peer port binds (Raft traffic and writes followers hand over).
    pub listen: Option<String>,
    /// Address:port peers use to reach this node, when it differs from `listen`.
    pub advertise: Option<String>,
    /// The initial members besides this node. A new cluster starts when its nodes first run
    /// with the same members; later changes go through `auditrelay cluster add|remove`.
    #[serde(default, rename = "peer")]
    pub peers: Vec<PeerSection>,
    /// Start without forming a cluster and wait to be added to a running one.
    #[serde(default)]
    pub join: bool,
    /// Raft entries (write batches) between snapshots.
    pub snapshot_every: Option<u64>,
    /// Entries kept in the log behind a snapshot, so that a node down for a while catches
    /// up from the log instead of a snapshot.
    pub log_keep: Option<u64>,
    pub heartbeat_ms: Option<u64>,
    pub election_timeout_ms: Option<u64>,
    /// Peer traffic over mutual TLS: this node's certificate and key, and the CA that signed
    /// every node's certificate (peers must present one; each proves its address's name and,
    /// in a `urn:auditrelay:node:N` URI SAN, its node id).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    /// Serve peers over plain TCP on an address other than loopback: anyone who reaches the
    /// port can then write records, change membership and replace the store. Off unless set
    /// in so many words.
    #[serde(default)]
    pub insecure_plaintext_peers: bool,
}

/// One `[[cluster.peer]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSection {
    pub id: u64,
    pub address: String,
}

/// The validated cluster settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    pub node_id: u64,
    /// `None` for the embedded single node, which talks to no one.
    pub listen: Option<SocketAddr>,
    pub advertise: String,
    /// Every initial member, this node included: id → peer address.
    pub members: BTreeMap<u64, String>,
    pub join: bool,
    pub snapshot_every: u64,
    pub log_keep: u64,
    pub heartbeat_ms: u64,
    pub election_timeout_ms: u64,
    /// Certificate, key and CA for mutual TLS between peers; `None`: plain TCP, which only a
    /// loopback `listen` or `insecure_plaintext_peers` allows.
    pub tls: Option<PeerTlsFiles>,
    /// Plain TCP on a non-loopback address was asked for explicitly.
    pub insecure_plaintext_peers: bool,
}

/// The files of peer TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerTlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl Default for ClusterConfig {
    fn default() -> ClusterConfig {
        ClusterConfig {
            node_id: 1,
            listen: None,
            advertise: String::new(),
            members: BTreeMap::from([(1, String::new())]),
            join: false,
            snapshot_every: 2_000,
            log_keep: 20_000,
            heartbeat_ms: 200,
            election_timeout_ms: 1_000,
            tls: None,
            insecure_plaintext_peers: false,
        }
    }
}

impl ClusterConfig {
    /// The embedded single node, for a configuration without `[cluster]`. It has no peer port,
    /// so no follower will ever read its log: nothing is kept behind a snapshot. With a
    /// cluster's 20,000 entries kept, a busy single node held about a gigabyte of Raft log
    /// that nobody reads.
    pub fn embedded() -> ClusterConfig {
        ClusterConfig {
            log_keep: 0,
            ..ClusterConfig::default()
        }
    }

    /// Validates the section; errors are (key, message).
    pub fn from_section(section: &ClusterSection) -> Result<ClusterConfig, (String, String)> {
        let fail = |key: &str, message: String| Err((format!("cluster.{key}"), message));
        let defaults = ClusterConfig::default();
        let node_id = match section.node_id {
            Some(0) => return fail("node_id", "must be at least 1".into()),
            Some(id) => id,
            None => return fail("node_id", "is required in [cluster]".into()),
        };
        let Some(listen_text) = &section.listen else {
            return fail(
                "listen",
                "is required in [cluster] (address:port for peers)".into(),
            );
        };
        let listen: SocketAddr = match listen_text.parse() {
            Ok(a) => a,
            Err(e) => {
                return fail(
                    "listen",
                    format!("{listen_text:?} is not an address:port ({e})"),
                )
            }
        };
        let advertise = section
            .advertise
            .clone()
            .unwrap_or_else(|| listen_text.clone());
        let mut members = BTreeMap::from([(node_id, advertise.clone())]);
        for (i, peer) in section.peers.iter().enumerate() {
            let key = format!("peer[{i}]");
            if peer.id == 0 {
                return fail(&format!("{key}.id"), "must be at least 1".into());
            }
            if peer.address.parse::<SocketAddr>().is_err() && !peer.address.contains(':') {
                return fail(
                    &format!("{key}.address"),
                    format!("{:?} is not host:port", peer.address),
                );
            }
            if members.insert(peer.id, peer.address.clone()).is_some() {
                return fail(
                    &format!("{key}.id"),
                    format!("node {} is listed twice", peer.id),
                );
            }
        }
        if section.join && !section.peers.is_empty() {
            return fail(
                "join",
                "a joining node lists no peers: the cluster adds it".into(),
            );
        }
        let positive = |key: &str, v: Option<u64>, default: u64| match v {
            Some(0) => Err((format!("cluster.{key}"), "must be positive".to_string())),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        let heartbeat_ms = positive("heartbeat_ms", section.heartbeat_ms, defaults.heartbeat_ms)?;
        let election_timeout_ms = positive(
            "election_timeout_ms",
            section.election_timeout_ms,
            defaults.election_timeout_ms,
        )?;
        if election_timeout_ms <= heartbeat_ms * 2 {
            return fail(
                "election_timeout_ms",
                format!("must be more than twice heartbeat_ms ({heartbeat_ms})"),
            );
        }
        let tls = match (&section.cert, &section.key, &section.ca) {
            (Some(cert), Some(key), Some(ca)) => Some(PeerTlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: ca.clone(),
            }),
            (None, None, None) => None,
            _ => {
                let missing = [
                    ("cert", &section.cert),
                    ("key", &section.key),
                    ("ca", &section.ca),
                ]
                .into_iter()
                .find(|(_, v)| v.is_none())
                .map_or("cert", |(k, _)| k);
                return fail(missing, "peer TLS needs cert, key and ca together".into());
            }
        };
        match (&tls, section.insecure_plaintext_peers) {
            (None, false) if !listen.ip().is_loopback() => {
                return fail(
                    "listen",
                    format!(
                        "{listen} is not a loopback address, so peers must use mutual TLS: set \
                         cluster.cert, cluster.key and cluster.ca (or insecure_plaintext_peers = true)"
                    ),
                )
            }
            (Some(_), true) => {
                return fail(
                    "insecure_plaintext_peers",
                    "cert, key and ca are set, so peers use mutual TLS: remove one or the other"
                        .into(),
                )
            }
            _ => {}
        }
        Ok(ClusterConfig {
            tls,
            insecure_plaintext_peers: section.insecure_plaintext_peers,
            node_id,
            listen: Some(listen),
            advertise,
            members,
            join: section.join,
            snapshot_every: positive(
                "snapshot_every",
                section.snapshot_every,
                defaults.snapshot_every,
            )?,
            log_keep: section.log_keep.unwrap_or(defaults.log_keep),
            heartbeat_ms,
            election_timeout_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ClusterConfig, (String, String)> {
        #[derive(Deserialize)]
        struct File {
            cluster: ClusterSection,
        }
        let file: File = toml::from_str(text).unwrap();
        ClusterConfig::from_section(&file.cluster)
    }

    #[test]
    fn members_include_this_node() {
        let c = parse(
            r#"[cluster]
            node_id = 2
            listen = "127.0.0.1:7102"
            [[cluster.peer]]
            id = 1
            address = "127.0.0.1:7101"
            [[cluster.peer]]
            id = 3
            address = "127.0.0.1:7103""#,
        )
        .unwrap();
        assert_eq!(c.members.len(), 3);
        assert_eq!(c.members[&2], "127.0.0.1:7102");
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse("[cluster]\nnode_id = 1\nlisten = \"x\"").unwrap_err();
        assert_eq!(e.0, "cluster.listen");
        let e = parse(
            "[cluster]\nnode_id = 1\nlisten = \"127.0.0.1:1\"\n[[cluster.peer]]\nid = 1\naddress = \"127.0.0.1:2\"",
        )
        .unwrap_err();
        assert_eq!(e.0, "cluster.peer[0].id");
        let e = parse("[cluster]\nlisten = \"127.0.0.1:1\"").unwrap_err();
        assert_eq!(e.0, "cluster.node_id");
    }

    #[test]
    fn a_plaintext_peer_port_off_loopback_is_refused_unless_asked_for() {
        let e = parse("[cluster]\nnode_id = 1\nlisten = \"10.0.0.5:7100\"").unwrap_err();
        assert_eq!(e.0, "cluster.listen");
        assert!(
            e.1.contains("10.0.0.5:7100 is not a loopback address"),
            "{}",
            e.1
        );
        assert!(e.1.contains("cluster.cert"), "{}", e.1);
        let e = parse("[cluster]\nnode_id = 1\nlisten = \"0.0.0.0:7100\"").unwrap_err();
        assert_eq!(e.0, "cluster.listen");
        let c = parse(
            "[cluster]\nnode_id = 1\nlisten = \"0.0.0.0:7100\"\ninsecure_plaintext_peers = true",
        )
        .unwrap();
        assert!(c.insecure_plaintext_peers && c.tls.is_none());
        let c = parse("[cluster]\nnode_id = 1\nlisten = \"[::1]:7100\"").unwrap();
        assert!(c.tls.is_none());
        let c = parse(
            "[cluster]\nnode_id = 1\nlisten = \"0.0.0.0:7100\"\ncert = \"a\"\nkey = \"b\"\nca = \"c\"",
        )
        .unwrap();
        assert!(c.tls.is_some());
    }
}
