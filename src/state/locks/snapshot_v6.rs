//! The lock as snapshot format 6 stored it (before sessions), read into today's form:
//! holds and waits without a session (detached, never reclaimed), an unconfirmed grant's
//! record moved into the queue's box.

use std::collections::VecDeque;

use bytes::Bytes;
use serde::Deserialize;

use super::holders::{Holder, Holders, LockMode};
use super::queue::{Queue, QueueBox, UnconfirmedGrant, Waiter};

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct HolderV6 {
    pub owner: Box<[u8]>,
    pub token: u64,
    pub lease_deadline_ms: u64,
    pub prior_token: u64,
    pub count: u32,
    pub mode: LockMode,
    pub unconfirmed: bool,
    pub prior_mode: Option<LockMode>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct WaiterV6 {
    pub owner: Bytes,
    pub mode: LockMode,
    pub ttl_ms: u64,
    pub wait_deadline_ms: Option<u64>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct LockV6 {
    pub holders: Vec<HolderV6>,
    pub queue: VecDeque<WaiterV6>,
}

impl From<LockV6> for super::Lock {
    fn from(v6: LockV6) -> super::Lock {
        let mut grants = Vec::new();
        let holders = v6
            .holders
            .into_iter()
            .map(|h| {
                if h.unconfirmed {
                    grants.push(UnconfirmedGrant {
                        owner: h.owner.clone(),
                        prior: h.prior_mode.map(|mode| (mode, h.prior_token)),
                        reclaim_deadline_ms: None,
                    });
                }
                Holder {
                    owner: h.owner,
                    token: h.token,
                    lease_deadline_ms: h.lease_deadline_ms,
                    session: None,
                    count: h.count,
                    mode: h.mode,
                    unconfirmed: h.unconfirmed,
                }
            })
            .collect();
        let waiters = v6
            .queue
            .into_iter()
            .map(|w| Waiter {
                owner: w.owner,
                mode: w.mode,
                ttl_ms: w.ttl_ms,
                wait_deadline_ms: w.wait_deadline_ms,
                session: None,
                reclaim_deadline_ms: None,
            })
            .collect();
        super::Lock {
            holders: Holders::from_vec(holders),
            queue: Queue::from_box(QueueBox { waiters, grants }),
        }
    }
}

/// A lock as version 6 wrote it (sessions and reclaim deadlines dropped), to test
/// that those snapshots still read.
#[cfg(test)]
impl From<&super::Lock> for LockV6 {
    fn from(lock: &super::Lock) -> LockV6 {
        LockV6 {
            holders: lock
                .holders
                .iter()
                .map(|h| {
                    let prior = lock.unconfirmed_grant(&h.owner).and_then(|g| g.prior);
                    HolderV6 {
                        owner: h.owner.clone(),
                        token: h.token,
                        lease_deadline_ms: h.lease_deadline_ms,
                        prior_token: prior.map_or(0, |(_, token)| token),
                        count: h.count,
                        mode: h.mode,
                        unconfirmed: h.unconfirmed,
                        prior_mode: prior.map(|(mode, _)| mode),
                    }
                })
                .collect(),
            queue: lock
                .queue
                .iter()
                .map(|w| WaiterV6 {
                    owner: w.owner.clone(),
                    mode: w.mode,
                    ttl_ms: w.ttl_ms,
                    wait_deadline_ms: w.wait_deadline_ms,
                })
                .collect(),
        }
    }
}
