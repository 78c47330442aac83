//! Who may ask what of this node over the peer port. The TLS handshake proves a peer holds a
//! certificate from the cluster's CA; its URI SAN (see `identity`) says which node it is. Here
//! that node id is checked against what the request claims and against the membership.
//!
//! The rule, by kind:
//! - Vote, Append, Snapshot: the node the request speaks for (the candidate, or the leader in
//!   the request's vote) must be the certificate's node (else `wrong_node`).
//! - Vote: the candidate must be a member (voter or learner) of this node's membership; a node
//!   with no membership yet (not initialised) takes the ids of its configured initial members.
//! - Append, Snapshot: the leader must be a member as above, or its vote in the request must be
//!   committed (a quorum elected it) and at least this node's vote. The second clause lets in a
//!   leader this node cannot know of yet: a joining node has no membership until the leader's
//!   first append arrives, and a node that was down while the leader was added learns of it
//!   only from that leader's appends. Raft itself refuses an append whose vote is older.
//! - Write, Admin: only from a member of the current membership.
//!
//! Without TLS (plaintext on loopback, or `insecure_plaintext_peers`) there is no certificate
//! and none of this can be checked.

use std::collections::BTreeSet;

use openraft::Vote;

use super::peer::Kind;
use super::types::NodeId;

/// Why the peer port shut a caller out: the `reason` label of `auditrelay_peer_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The TLS handshake failed: no certificate, one from another CA, or not TLS at all.
    Handshake,
    /// The certificate names no node id (no `urn:auditrelay:node:N` URI SAN).
    NoNodeId,
    /// The certificate's node is not a member this node accepts the request from.
    NotMember,
    /// The request speaks for another node than the certificate's, or the server's
    /// certificate names another node than the one meant.
    WrongNode,
    /// The declared frame length is over the limit.
    FrameTooLarge,
    /// The handshake, or a frame once begun, did not complete in time.
    Timeout,
    /// The peer port already serves its maximum of connections.
    Connections,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Handshake => "handshake",
            Refusal::NoNodeId => "no_node_id",
            Refusal::NotMember => "not_member",
            Refusal::WrongNode => "wrong_node",
            Refusal::FrameTooLarge => "frame_too_large",
            Refusal::Timeout => "timeout",
            Refusal::Connections => "connections",
        }
    }

    pub const ALL: [Refusal; 7] = [
        Refusal::Handshake,
        Refusal::NoNodeId,
        Refusal::NotMember,
        Refusal::WrongNode,
        Refusal::FrameTooLarge,
        Refusal::Timeout,
        Refusal::Connections,
    ];
}

/// What this node knows of the cluster when a request arrives.
#[derive(Debug, Clone)]
pub struct View {
    /// Voters and learners of the current membership; empty before the node has one.
    pub members: BTreeSet<NodeId>,
    /// The configured initial members, this node included (only itself when joining).
    pub initial: BTreeSet<NodeId>,
    /// This node's current vote.
    pub vote: Vote<NodeId>,
}

/// What a request claims of itself.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    pub kind: Kind,
    /// The vote carried by a Vote, Append or Snapshot request; `None` for Write and Admin.
    pub vote: Option<&'a Vote<NodeId>>,
}

impl<'a> Claim<'a> {
    /// A Vote, Append or Snapshot request carrying `vote`.
    pub fn raft(kind: Kind, vote: &'a Vote<NodeId>) -> Claim<'a> {
        Claim {
            kind,
            vote: Some(vote),
        }
    }
}

/// Whether the node with certificate id `sender` may make the request `claim`.
pub fn admit(sender: NodeId, claim: Claim<'_>, view: &View) -> Result<(), Refusal> {
    let known = if view.members.is_empty() {
        &view.initial
    } else {
        &view.members
    };
    match (claim.kind, claim.vote) {
        (Kind::Write | Kind::Admin, _) => {
            if view.members.contains(&sender) {
                Ok(())
            } else {
                Err(Refusal::NotMember)
            }
        }
        (Kind::Vote | Kind::Append | Kind::Snapshot, None) => Err(Refusal::WrongNode),
        (kind, Some(vote)) => {
            if vote.leader_id().voted_for() != Some(sender) {
                return Err(Refusal::WrongNode);
            }
            let leader_news = kind != Kind::Vote && vote.is_committed() && *vote >= view.vote;
            if known.contains(&sender) || leader_news {
                Ok(())
            } else {
                Err(Refusal::NotMember)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(members: &[NodeId], initial: &[NodeId], vote: Vote<NodeId>) -> View {
        View {
            members: members.iter().copied().collect(),
            initial: initial.iter().copied().collect(),
            vote,
        }
    }

    fn claim(kind: Kind, vote: &Vote<NodeId>) -> Claim<'_> {
        Claim::raft(kind, vote)
    }

    #[test]
    fn a_request_speaking_for_another_node_than_its_certificate_is_refused() {
        let v = view(&[1, 2, 3], &[1, 2, 3], Vote::new(4, 1));
        let as_three = Vote::new(5, 3);
        for kind in [Kind::Vote, Kind::Append, Kind::Snapshot] {
            assert_eq!(
                admit(2, claim(kind, &as_three), &v),
                Err(Refusal::WrongNode),
                "{kind:?}"
            );
        }
        assert_eq!(admit(3, claim(Kind::Vote, &as_three), &v), Ok(()));
    }

    #[test]
    fn writes_and_admin_come_only_from_members() {
        let v = view(&[1, 2, 3], &[1, 2, 3], Vote::new(4, 1));
        let write = Claim {
            kind: Kind::Write,
            vote: None,
        };
        assert_eq!(admit(2, write, &v), Ok(()));
        assert_eq!(admit(9, write, &v), Err(Refusal::NotMember));
        let admin = Claim {
            kind: Kind::Admin,
            vote: None,
        };
        assert_eq!(admit(9, admin, &v), Err(Refusal::NotMember));
        let fresh = view(&[], &[1, 2, 3], Vote::default());
        assert_eq!(admit(2, write, &fresh), Err(Refusal::NotMember));
    }

    #[test]
    fn a_removed_node_cannot_start_an_election() {
        let v = view(&[1, 2], &[1, 2, 3], Vote::new(7, 1));
        assert_eq!(
            admit(3, claim(Kind::Vote, &Vote::new(8, 3)), &v),
            Err(Refusal::NotMember)
        );
    }

    #[test]
    fn a_node_without_membership_takes_votes_from_its_initial_members() {
        let fresh = view(&[], &[1, 2, 3], Vote::default());
        assert_eq!(
            admit(2, claim(Kind::Vote, &Vote::new(1, 2)), &fresh),
            Ok(())
        );
        assert_eq!(
            admit(9, claim(Kind::Vote, &Vote::new(1, 9)), &fresh),
            Err(Refusal::NotMember)
        );
    }

    #[test]
    fn a_joining_node_takes_appends_from_an_elected_leader_it_does_not_know_yet() {
        let joining = view(&[], &[4], Vote::default());
        let elected = Vote::new_committed(3, 1);
        assert_eq!(admit(1, claim(Kind::Append, &elected), &joining), Ok(()));
        assert_eq!(admit(1, claim(Kind::Snapshot, &elected), &joining), Ok(()));
        // A candidate's vote is no leader's yet.
        assert_eq!(
            admit(1, claim(Kind::Append, &Vote::new(3, 1)), &joining),
            Err(Refusal::NotMember)
        );
        assert_eq!(
            admit(1, claim(Kind::Vote, &Vote::new(3, 1)), &joining),
            Err(Refusal::NotMember)
        );
    }

    #[test]
    fn a_non_member_leader_older_than_this_node_s_vote_is_refused() {
        let v = view(&[1, 2, 3], &[1, 2, 3], Vote::new_committed(9, 1));
        assert_eq!(
            admit(4, claim(Kind::Append, &Vote::new_committed(5, 4)), &v),
            Err(Refusal::NotMember)
        );
        assert_eq!(
            admit(4, claim(Kind::Append, &Vote::new_committed(10, 4)), &v),
            Ok(())
        );
    }
}
