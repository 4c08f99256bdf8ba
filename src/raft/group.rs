//! The facade over one running Raft group: who leads, propose, the read barrier, the
//! state (the keyspace), membership and metrics. Server code goes through it and never
//! names an openraft type, nor takes the keyspace lock itself.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::metrics::RaftServerMetrics;
use openraft::{ChangeMembers, RaftMetrics, ServerState};
use tokio::sync::watch;

use super::{GroupId, NodeAddr, NodeId, RaftTransport, TypeConfig};
use crate::reply::Reply;
use crate::state::{Batch, Keyspace};

/// A running Raft group on this node; clones share the group.
#[derive(Clone)]
pub struct RaftGroup {
    pub id: GroupId,
    pub(super) raft: openraft::Raft<TypeConfig>,
    /// The live state machine; apply is its only writer.
    pub(super) state: Arc<RwLock<Keyspace>>,
    /// The index of the last entry applied to `state` (0 before the first), published
    /// after the entry's changes are written; for waking clients blocked on state.
    pub(super) applied: watch::Receiver<u64>,
    /// The process's Raft connections, which tell whether the peers answer.
    pub(super) transport: RaftTransport,
}

/// A node's role in its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Shutdown,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Learner => "learner",
            Role::Shutdown => "shutdown",
        }
    }
}

impl From<ServerState> for Role {
    fn from(state: ServerState) -> Role {
        match state {
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Shutdown,
        }
    }
}

/// This node's view of its group at one moment (its Raft metrics).
#[derive(Clone, Debug)]
pub struct GroupStatus {
    /// This node's id.
    pub id: NodeId,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub last_log_index: Option<u64>,
    pub applied_index: u64,
    pub snapshot_index: u64,
    pub purged_index: u64,
    /// Every member, voters and learners, by id.
    pub members: BTreeMap<NodeId, NodeAddr>,
    pub voters: BTreeSet<NodeId>,
    /// On the leader only: each follower's highest matched index (`None`: none yet).
    pub replication: Option<BTreeMap<NodeId, Option<u64>>>,
}

impl GroupStatus {
    fn of(m: &RaftMetrics<NodeId, NodeAddr>) -> GroupStatus {
        let membership = m.membership_config.membership();
        GroupStatus {
            id: m.id,
            role: m.state.into(),
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.map_or(0, |l| l.index),
            snapshot_index: m.snapshot.map_or(0, |l| l.index),
            purged_index: m.purged.map_or(0, |l| l.index),
            members: membership
                .nodes()
                .map(|(id, addr)| (*id, addr.clone()))
                .collect(),
            voters: membership.voter_ids().collect(),
            replication: m.replication.as_ref().map(|progress| {
                progress
                    .iter()
                    .map(|(id, log)| (*id, log.map(|l| l.index)))
                    .collect()
            }),
        }
    }

    /// Whether this node leads.
    pub fn leads(&self) -> bool {
        self.leader == Some(self.id)
    }

    /// The client address of member `id`, if it has a valid one.
    pub fn client_addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.members.get(&id)?.client_addr.parse().ok()
    }
}

/// The leader a node knows of (`RaftGroup::known_leader`).
pub enum KnownLeader {
    This,
    /// Another member, at this client address if it has a valid one.
    Other(Option<SocketAddr>),
}

/// Why the read barrier did not pass.
pub enum BarrierError {
    /// This node does not lead (a leader may be known or not).
    NotLeader,
    /// No quorum confirmed that this node still leads.
    NoQuorum,
}

/// Why a proposed entry was not applied here.
pub enum CommitError {
    /// This node stopped leading before the entry was applied (or is shutting down).
    NotLeader,
    Other(String),
}

/// Why a membership change failed.
pub enum MembershipError {
    /// Leadership moved while the change was under way.
    LeaderMoved,
    Refused(String),
    Fatal(String),
}

impl From<RaftError<NodeId, ClientWriteError<NodeId, NodeAddr>>> for MembershipError {
    fn from(err: RaftError<NodeId, ClientWriteError<NodeId, NodeAddr>>) -> MembershipError {
        match err {
            RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => {
                MembershipError::LeaderMoved
            }
            RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                MembershipError::Refused(e.to_string())
            }
            RaftError::Fatal(e) => MembershipError::Fatal(e.to_string()),
        }
    }
}

impl RaftGroup {
    /// The keyspace, read-locked. Apply is its only writer; a writer that panicked left
    /// it half-changed, so nothing may read it: the Raft core stops on the same poison
    /// (`state_store`), and a reader panics here. The one place the lock is taken.
    pub fn state(&self) -> RwLockReadGuard<'_, Keyspace> {
        self.state
            .read()
            .expect("the keyspace lock is poisoned: an apply panicked mid-entry")
    }

    /// The index of the last applied entry, as a watch that changes with each entry.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    /// This node's view of the group now.
    pub fn status(&self) -> GroupStatus {
        GroupStatus::of(&self.raft.metrics().borrow())
    }

    /// The leader this node knows of.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// The leader this node knows of: itself, or another member and its client address
    /// (`None` if it has no valid one). Cheap: for every data command's routing.
    pub fn known_leader(&self) -> Option<KnownLeader> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        match m.current_leader? {
            leader if leader == m.id => Some(KnownLeader::This),
            leader => Some(KnownLeader::Other(
                m.membership_config
                    .membership()
                    .get_node(&leader)
                    .and_then(|n| n.client_addr.parse().ok()),
            )),
        }
    }

    /// Whether this node leads.
    pub fn leads(&self) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        m.current_leader == Some(m.id)
    }

    /// The current term (of this node's vote, or of its log when that is later).
    pub fn term(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// The group's metrics as they change with every entry and election.
    pub fn watch(&self) -> GroupWatch {
        GroupWatch(self.raft.metrics())
    }

    /// Who leads, changing only with elections and membership, not with entries.
    pub fn watch_leader(&self) -> LeaderWatch {
        LeaderWatch(self.raft.server_metrics())
    }

    /// How long member `peer` has left this node's Raft requests unanswered.
    pub fn unanswered_for(&self, peer: NodeId) -> Duration {
        self.transport.unanswered_for(peer)
    }

    /// Waits until some leader is known (and a moment more, for it to commit its first
    /// entry), or until `deadline`.
    pub async fn wait_for_leader(&self, deadline: tokio::time::Instant) {
        let mut metrics = self.raft.metrics();
        let _ = tokio::time::timeout_at(deadline, async {
            loop {
                if metrics.borrow_and_update().current_leader.is_some() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    return;
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }

    /// Raft's read barrier: returns once this node has confirmed with a quorum that it
    /// leads, and has applied everything committed before the call.
    pub async fn read_barrier(&self) -> Result<(), BarrierError> {
        match self.raft.ensure_linearizable().await {
            Ok(_) => Ok(()),
            Err(err) if err.forward_to_leader().is_some() => Err(BarrierError::NotLeader),
            Err(_) => Err(BarrierError::NoQuorum),
        }
    }

    /// Appends `batch` as one entry (in the order of calls); the future it returns gives
    /// the entry's replies, one per op, once it is committed and applied. `Err`: the Raft
    /// core has stopped.
    pub async fn propose(
        &self,
        batch: Batch,
    ) -> Result<impl Future<Output = Result<Vec<Reply>, CommitError>> + Send + 'static, String>
    {
        let committed = self
            .raft
            .client_write_ff(batch)
            .await
            .map_err(|fatal| fatal.to_string())?;
        Ok(async move {
            match committed.await {
                Ok(Ok(response)) => Ok(response.data),
                Ok(Err(ClientWriteError::ForwardToLeader(_))) | Err(_) => {
                    Err(CommitError::NotLeader)
                }
                Ok(Err(err)) => Err(CommitError::Other(err.to_string())),
            }
        })
    }

    /// Adds `id` as a learner and waits until it has caught up with the log.
    pub async fn add_learner(&self, id: NodeId, addr: NodeAddr) -> Result<(), MembershipError> {
        self.raft.add_learner(id, addr, true).await?;
        Ok(())
    }

    /// Makes learner `id` a voter.
    pub async fn promote_to_voter(&self, id: NodeId) -> Result<(), MembershipError> {
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await?;
        Ok(())
    }

    /// Removes member `id`, a voter or a learner.
    pub async fn remove_member(&self, id: NodeId, voter: bool) -> Result<(), MembershipError> {
        let ids = BTreeSet::from([id]);
        let change = if voter {
            ChangeMembers::RemoveVoters(ids)
        } else {
            ChangeMembers::RemoveNodes(ids)
        };
        self.raft.change_membership(change, false).await?;
        Ok(())
    }

    /// Turns this node's heartbeats (as leader) on or off.
    pub fn set_heartbeats(&self, on: bool) {
        self.raft.runtime_config().heartbeat(on);
    }

    /// Turns this node's election timer on or off.
    pub fn set_elections(&self, on: bool) {
        self.raft.runtime_config().elect(on);
    }

    /// Stops the group's Raft core (a node shutting down): no more votes, appends or
    /// applies. Whatever it acknowledged is on disk already.
    pub async fn shutdown(&self) {
        if let Err(err) = self.raft.shutdown().await {
            tracing::warn!(%err, "stopping Raft");
        }
    }

    /// Starts an election now. `Err`: the Raft core has stopped.
    pub async fn stand_for_election(&self) -> Result<(), ()> {
        self.raft.trigger().elect().await.map_err(|_| ())
    }
}

/// A watch on the group's metrics (`RaftGroup::watch`).
pub struct GroupWatch(watch::Receiver<RaftMetrics<NodeId, NodeAddr>>);

impl GroupWatch {
    /// The view now, marking it seen.
    pub fn status(&mut self) -> GroupStatus {
        GroupStatus::of(&self.0.borrow_and_update())
    }

    /// The term now and whether this node leads in it, marking the view seen.
    fn leads_in(&mut self) -> (u64, bool) {
        let m = self.0.borrow_and_update();
        (m.current_term, m.current_leader == Some(m.id))
    }

    /// The index of the last entry in this node's log.
    pub fn last_log_index(&self) -> Option<u64> {
        self.0.borrow().last_log_index
    }

    /// Waits for the next change; `Err`: the group has shut down.
    pub async fn changed(&mut self) -> Result<(), ()> {
        self.0.changed().await.map_err(|_| ())
    }

    /// Returns once this node no longer leads in `term` (or is shutting down).
    pub async fn leadership_lost(&mut self, term: u64) {
        loop {
            if !self.leads_in_term(term) {
                return;
            }
            if self.changed().await.is_err() {
                return;
            }
        }
    }

    /// Whether this node still leads in `term`, marking the view seen.
    pub fn leads_in_term(&mut self, term: u64) -> bool {
        self.leads_in() == (term, true)
    }
}

/// A watch on who leads (`RaftGroup::watch_leader`).
pub struct LeaderWatch(watch::Receiver<RaftServerMetrics<NodeId, NodeAddr>>);

impl LeaderWatch {
    /// The term of the vote this node holds, and the leader it knows of, marking them seen.
    /// Lock sessions are named by this term.
    pub fn vote(&mut self) -> (u64, Option<NodeId>) {
        let m = self.0.borrow_and_update();
        (m.vote.leader_id().term, m.current_leader)
    }

    /// The client address of the leader this node knows of, marking it seen.
    pub fn leader_client_addr(&mut self) -> Option<SocketAddr> {
        let m = self.0.borrow_and_update();
        let leader = m.current_leader?;
        m.membership_config
            .membership()
            .get_node(&leader)?
            .client_addr
            .parse()
            .ok()
    }

    /// Waits for the next change; `Err`: the group has shut down.
    pub async fn changed(&mut self) -> Result<(), ()> {
        self.0.changed().await.map_err(|_| ())
    }
}
