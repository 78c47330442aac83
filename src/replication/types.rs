//! What goes through the Raft log: batches of prepared records and forwarding control
//! commands, and what applying them answers. Everything here is serialised with bincode for
//! the log and the wire; a record's JSON travels as one byte string, not as a list of numbers.

use serde::{Deserialize, Serialize};

use crate::store::{Control, SeqRange};
pub use crate::write_path::{ProposedRecord, RecordBatch};

openraft::declare_raft_types!(
    /// The relay's Raft: node ids are numbers, nodes are known by their peer address, and a
    /// snapshot is a file (a packed checkpoint of the store) streamed in chunks.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
);

pub type NodeId = u64;
pub type LogId = openraft::LogId<NodeId>;
pub type Membership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
pub type LogEntry = openraft::Entry<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;

/// A Raft entry's payload.
#[derive(Clone, Serialize, Deserialize)]
pub enum Request {
    /// One write-path batch: one entry, so one fsync on each node covers all of it. Shared, so
    /// that the copies Raft keeps (the proposal, the log's recent entries, replication) are
    /// references rather than copies of every record.
    Records(RecordBatch),
    Control(Vec<Control>),
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Records(r) => write!(f, "Records({})", r.len()),
            Request::Control(ops) => write!(f, "Control({ops:?})"),
        }
    }
}

/// What applying an entry answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The seqs a record batch was given.
    Records {
        first: u64,
        count: u64,
    },
    Done,
}

impl Response {
    pub fn seqs(self) -> Option<SeqRange> {
        match self {
            Response::Records { first, count } => Some(SeqRange { first, count }),
            Response::Done => None,
        }
    }
}

/// Encodes for the log and the wire.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    bincode::serialize(value).map_err(|e| e.to_string())
}

/// Decodes what [`encode`] wrote.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    bincode::deserialize(bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::keys::IndexTerms;

    #[test]
    fn records_round_trip_with_json_as_one_byte_string() {
        let request = Request::Records(Arc::new(vec![ProposedRecord {
            received_micros: 7,
            terms: IndexTerms([Some(1), None, None, None, None, Some(9)]),
            json: vec![b'x'; 1000],
        }]));
        let bytes = encode(&request).unwrap();
        assert!(bytes.len() < 1100, "{} bytes", bytes.len());
        match decode::<Request>(&bytes).unwrap() {
            Request::Records(r) => {
                assert_eq!(r[0].json, vec![b'x'; 1000]);
                assert_eq!(r[0].terms.0[5], Some(9));
            }
            other => panic!("{other:?}"),
        }
    }
}
