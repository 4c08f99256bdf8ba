use super::*;

const EX: LockMode = LockMode::Exclusive;
const PR: LockMode = LockMode::Shared;

struct Harness {
    lock: Lock,
    resource: Bytes,
    counter: u64,
    events: Vec<LockEvent>,
    tally: Tally,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            lock: Lock::default(),
            resource: Bytes::from_static(b"r"),
            counter: 0,
            events: Vec::new(),
            tally: Tally::default(),
        }
    }

    fn fx(&mut self) -> (&mut Lock, Effects<'_>) {
        (
            &mut self.lock,
            Effects {
                resource: &self.resource,
                hold: Default::default(),
                fence_counter: &mut self.counter,
                events: &mut self.events,
                changed: false,
                now_ms: 0,
                tally: &mut self.tally,
            },
        )
    }

    fn acquire(
        &mut self,
        owner: &str,
        mode: LockMode,
        ttl: u64,
        wait: Option<Option<u64>>,
        now: u64,
    ) -> Acquire {
        let owner = Bytes::copy_from_slice(owner.as_bytes());
        let (lock, mut fx) = self.fx();
        lock.acquire(
            Request {
                owner: &owner,
                mode,
                ttl_ms: ttl,
                wait,
                session: None,
            },
            100,
            now,
            &mut fx,
        )
    }

    fn release(&mut self, owner: &str, now: u64) -> Result<u32, NotOwner> {
        let (lock, mut fx) = self.fx();
        lock.release(owner.as_bytes(), now, &mut fx)
    }

    fn advance(&mut self, now: u64) {
        let (lock, mut fx) = self.fx();
        lock.advance(now, &mut fx);
    }

    fn granted(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                LockEvent::Granted { owner, .. } => {
                    Some(String::from_utf8_lossy(owner).into_owned())
                }
                _ => None,
            })
            .collect()
    }
}

fn token(a: Acquire) -> u64 {
    match a {
        Acquire::Granted { token } => token,
        other => panic!("expected a grant, got {other:?}"),
    }
}

#[test]
fn exclusive_lock_refuses_second_owner() {
    let mut h = Harness::new();
    token(h.acquire("a", EX, 1000, None, 0));
    assert_eq!(h.acquire("b", EX, 1000, None, 1), Acquire::Busy);
    assert_eq!(h.acquire("b", PR, 1000, None, 1), Acquire::Busy);
}

#[test]
fn reentrant_lock_needs_as_many_unlocks_and_keeps_its_token() {
    let mut h = Harness::new();
    let t1 = token(h.acquire("a", EX, 1000, None, 0));
    let t2 = token(h.acquire("a", EX, 1000, None, 1));
    assert_eq!(t1, t2);
    assert_eq!(h.release("a", 2), Ok(1));
    assert_eq!(h.acquire("b", EX, 1000, None, 3), Acquire::Busy);
    assert_eq!(h.release("a", 4), Ok(0));
    assert!(h.lock.is_idle());
}

#[test]
fn shared_holders_coexist_and_exclusive_waits_for_all() {
    let mut h = Harness::new();
    token(h.acquire("a", PR, 1000, None, 0));
    token(h.acquire("b", PR, 1000, None, 0));
    assert_eq!(h.acquire("c", EX, 1000, Some(None), 1), Acquire::Queued);
    h.release("a", 2).unwrap();
    assert!(h.granted().is_empty());
    h.release("b", 3).unwrap();
    assert_eq!(h.granted(), vec!["c"]);
    assert_eq!(h.lock.mode(), Some(EX));
}

#[test]
fn queued_exclusive_blocks_later_shared_requests() {
    let mut h = Harness::new();
    token(h.acquire("a", PR, 1000, None, 0));
    assert_eq!(h.acquire("w", EX, 1000, Some(None), 1), Acquire::Queued);
    assert_eq!(
        h.acquire("r", PR, 1000, None, 2),
        Acquire::Busy,
        "no writer starvation"
    );
    assert_eq!(h.acquire("r", PR, 1000, Some(None), 2), Acquire::Queued);
    h.release("a", 3).unwrap();
    assert_eq!(h.granted(), vec!["w"]);
    h.release("w", 4).unwrap();
    assert_eq!(h.granted(), vec!["w", "r"]);
}

#[test]
fn waiters_are_granted_in_arrival_order() {
    let mut h = Harness::new();
    token(h.acquire("a", EX, 1000, None, 0));
    for w in ["w1", "w2", "w3"] {
        assert_eq!(h.acquire(w, EX, 1000, Some(None), 1), Acquire::Queued);
    }
    h.release("a", 2).unwrap();
    h.release("w1", 3).unwrap();
    h.release("w2", 4).unwrap();
    assert_eq!(h.granted(), vec!["w1", "w2", "w3"]);
}

#[test]
fn shared_waiters_at_the_head_are_granted_together() {
    let mut h = Harness::new();
    token(h.acquire("a", EX, 1000, None, 0));
    h.acquire("r1", PR, 1000, Some(None), 1);
    h.acquire("r2", PR, 1000, Some(None), 1);
    h.acquire("w", EX, 1000, Some(None), 1);
    h.acquire("r3", PR, 1000, Some(None), 1);
    h.release("a", 2).unwrap();
    assert_eq!(h.granted(), vec!["r1", "r2"]);
    assert_eq!(h.lock.queue.len(), 2);
}

#[test]
fn expired_lease_hands_over_to_next_waiter_with_a_larger_token() {
    let mut h = Harness::new();
    let t1 = token(h.acquire("a", EX, 100, None, 0));
    h.acquire("b", EX, 100, Some(None), 10);
    h.advance(99);
    assert!(h.granted().is_empty());
    h.advance(100);
    assert_eq!(h.granted(), vec!["b"]);
    let t2 = h.lock.holder(b"b").unwrap().token;
    assert!(t2 > t1);
    assert!(h.events.contains(&LockEvent::Released {
        resource: Bytes::from_static(b"r")
    }));
}

#[test]
fn wait_times_out_and_leaves_the_queue() {
    let mut h = Harness::new();
    token(h.acquire("a", EX, 1000, None, 0));
    assert_eq!(h.acquire("b", EX, 1000, Some(Some(50)), 0), Acquire::Queued);
    h.advance(50);
    assert!(h.lock.queue.is_empty());
    assert!(matches!(
        h.events.last(),
        Some(LockEvent::WaitTimedOut { .. })
    ));
    h.release("a", 60).unwrap();
    assert!(h.granted().is_empty());
}

#[test]
fn non_owner_cannot_unlock_or_renew() {
    let mut h = Harness::new();
    token(h.acquire("a", EX, 1000, None, 0));
    assert_eq!(h.release("b", 1), Err(NotOwner));
    let (lock, mut fx) = h.fx();
    assert_eq!(lock.renew(b"b", 1000, None, 1, &mut fx), Err(NotOwner));
    assert_eq!(lock.renew(b"a", 5000, None, 1, &mut fx), Ok(true));
    assert_eq!(lock.holder(b"a").unwrap().lease_deadline_ms, 5001);
    assert_eq!(lock.holders.len(), 1);
}

#[test]
fn renew_of_expired_lock_returns_false() {
    let mut h = Harness::new();
    token(h.acquire("a", EX, 100, None, 0));
    let (lock, mut fx) = h.fx();
    assert_eq!(lock.renew(b"a", 100, None, 200, &mut fx), Ok(false));
}

#[test]
fn tokens_strictly_increase_across_owners() {
    let mut h = Harness::new();
    let mut last = 0;
    for i in 0..10 {
        let t = token(h.acquire(&format!("o{i}"), EX, 1000, None, i));
        assert!(t > last);
        last = t;
        h.release(&format!("o{i}"), i).unwrap();
    }
}

#[test]
fn upgrade_from_shared_waits_for_other_readers_and_gets_new_token() {
    let mut h = Harness::new();
    let t_a = token(h.acquire("a", PR, 1000, None, 0));
    token(h.acquire("b", PR, 1000, None, 0));
    assert_eq!(h.acquire("a", EX, 1000, None, 1), Acquire::Busy);
    assert_eq!(h.acquire("a", EX, 1000, Some(None), 1), Acquire::Queued);
    h.release("b", 2).unwrap();
    assert_eq!(h.granted(), vec!["a"]);
    let a = h.lock.holder(b"a").unwrap();
    assert_eq!((a.mode, a.count), (EX, 2));
    assert!(a.token > t_a);
}

#[test]
fn sole_shared_holder_upgrades_at_once() {
    let mut h = Harness::new();
    token(h.acquire("a", PR, 1000, None, 0));
    token(h.acquire("a", EX, 1000, None, 1));
    assert_eq!(h.lock.mode(), Some(EX));
    assert_eq!(h.acquire("b", PR, 1000, None, 2), Acquire::Busy);
}

#[test]
fn same_owner_asking_again_keeps_its_queue_place() {
    let mut h = Harness::new();
    token(h.acquire("a", EX, 1000, None, 0));
    h.acquire("b", EX, 1000, Some(None), 1);
    h.acquire("c", EX, 1000, Some(None), 1);
    assert_eq!(h.acquire("b", EX, 1000, Some(None), 2), Acquire::Queued);
    assert_eq!(h.lock.queue.len(), 2);
    assert_eq!(h.lock.queue[0].owner, "b");
}

#[test]
fn cancel_wait_gives_back_an_undelivered_grant() {
    let mut h = Harness::new();
    token(h.acquire("a", EX, 1000, None, 0));
    h.acquire("b", EX, 1000, Some(None), 1);
    h.acquire("c", EX, 1000, Some(None), 1);
    h.release("a", 2).unwrap();
    assert_eq!(h.granted(), vec!["b"]);
    let (lock, mut fx) = h.fx();
    assert!(lock.cancel_wait(b"b", None, 3, &mut fx));
    assert_eq!(h.granted(), vec!["b", "c"]);
}

#[test]
fn cancel_wait_gives_back_an_undelivered_upgrade_as_the_shared_hold_it_was() {
    let mut h = Harness::new();
    let t_a = token(h.acquire("a", PR, 1000, None, 0));
    token(h.acquire("b", PR, 1000, None, 0));
    assert_eq!(h.acquire("a", EX, 1000, Some(None), 1), Acquire::Queued);
    h.acquire("r", PR, 1000, Some(None), 1);
    h.release("b", 2).unwrap();
    assert_eq!(h.lock.mode(), Some(EX));
    let (lock, mut fx) = h.fx();
    assert!(lock.cancel_wait(b"a", None, 3, &mut fx));
    let a = h.lock.holder(b"a").unwrap();
    assert_eq!((a.mode, a.count, a.token), (PR, 1, t_a));
    assert_eq!(h.granted(), vec!["a", "r"], "the reader behind is served");
}

#[test]
fn asking_again_after_an_unseen_grant_finds_it_without_a_second_hold() {
    let mut h = Harness::new();
    token(h.acquire("a", EX, 1000, None, 0));
    h.acquire("b", EX, 1000, Some(None), 1);
    h.release("a", 2).unwrap();
    let granted = h.lock.holder(b"b").unwrap().token;
    assert_eq!(token(h.acquire("b", EX, 1000, Some(None), 3)), granted);
    assert_eq!(h.lock.holder(b"b").unwrap().count, 1);
    // Confirmed now: the next LOCK is an ordinary reentrant one.
    token(h.acquire("b", EX, 1000, None, 4));
    assert_eq!(h.lock.holder(b"b").unwrap().count, 2);
    assert_eq!(h.release("b", 5), Ok(1));
}

#[test]
fn cancel_wait_after_the_owner_used_its_grant_changes_nothing() {
    let mut h = Harness::new();
    token(h.acquire("a", EX, 1000, None, 0));
    h.acquire("b", EX, 1000, Some(None), 1);
    h.release("a", 2).unwrap();
    let (lock, mut fx) = h.fx();
    assert_eq!(lock.renew(b"b", 1000, None, 3, &mut fx), Ok(true));
    assert!(!lock.cancel_wait(b"b", None, 4, &mut fx));
    assert!(lock.holder(b"b").is_some());
}

#[test]
fn queue_limit_is_enforced() {
    let mut h = Harness::new();
    token(h.acquire("a", EX, 1000, None, 0));
    let (lock, mut fx) = h.fx();
    for i in 0..2 {
        let owner = Bytes::from(format!("w{i}"));
        let req = Request {
            owner: &owner,
            mode: EX,
            ttl_ms: 10,
            wait: Some(None),
            session: None,
        };
        assert_eq!(lock.acquire(req, 2, 1, &mut fx), Acquire::Queued);
    }
    let owner = Bytes::from_static(b"late");
    let req = Request {
        owner: &owner,
        mode: EX,
        ttl_ms: 10,
        wait: Some(None),
        session: None,
    };
    assert_eq!(lock.acquire(req, 2, 1, &mut fx), Acquire::QueueFull);
}

#[test]
fn force_release_serves_the_queue() {
    let mut h = Harness::new();
    token(h.acquire("a", EX, 1000, None, 0));
    h.acquire("b", EX, 1000, Some(None), 1);
    let (lock, mut fx) = h.fx();
    lock.force_release(2, &mut fx);
    assert_eq!(h.granted(), vec!["b"]);
}

#[test]
fn next_deadline_is_the_earliest_lease_or_wait() {
    let mut h = Harness::new();
    token(h.acquire("a", EX, 1000, None, 0));
    h.acquire("b", EX, 1000, Some(Some(300)), 0);
    assert_eq!(h.lock.next_deadline_ms(), Some(300));
}

#[test]
fn unconfirmed_grants_keep_their_record_in_the_queue_box_and_only_there() {
    let mut h = Harness::new();
    token(h.acquire("a", EX, 1000, None, 0));
    h.acquire("b", EX, 1000, Some(None), 1);
    assert!(h.lock.queue.is_present());
    h.release("a", 2).unwrap();
    // The waiter left the queue; the box stays for its grant's record.
    assert!(h.lock.queue.is_empty() && h.lock.queue.is_present());
    assert!(h.lock.unconfirmed_grant(b"b").is_some());
    assert!(h.lock.grants_match_holders());
    token(h.acquire("b", EX, 1000, None, 3));
    assert!(!h.lock.queue.is_present(), "confirmed: the box goes");
    // What a corrupt snapshot could hold: a record without its unconfirmed holder.
    h.lock.queue.push_grant(UnconfirmedGrant {
        owner: Box::from(&b"b"[..]),
        prior: None,
        reclaim_deadline_ms: None,
    });
    assert!(!h.lock.grants_match_holders());
}
