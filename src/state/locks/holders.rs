//! Who holds a lock: the lock modes, one holder, and the holders of a lock, kept inline
//! while there is one.

use serde::{Deserialize, Serialize};

use crate::state::session::SessionRef;

/// Lock modes, named as in VMS-style lock managers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockMode {
    /// EX: one holder, no one else.
    Exclusive,
    /// PR (protected read): any number of shared holders, no exclusive one.
    Shared,
}

impl LockMode {
    pub fn name(self) -> &'static str {
        match self {
            LockMode::Exclusive => "EX",
            LockMode::Shared => "PR",
        }
    }

    /// Whether a hold in `self` already grants what `wanted` asks for.
    pub(super) fn covers(self, wanted: LockMode) -> bool {
        self == LockMode::Exclusive || wanted == LockMode::Shared
    }
}

/// One holder of a lock. Laid out for size (a million held locks are a million of these,
/// 48 bytes each): the owner is a bare boxed slice rather than a `Bytes` with its 32-byte
/// header, the session a shared pointer, and what an unconfirmed grant needs beyond its
/// flag is kept in the queue's box (`Queue`), which exists only while there is a queue or
/// such a grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub owner: Box<[u8]>,
    pub token: u64,
    pub lease_deadline_ms: u64,
    /// The session of the last command of the owner that took, renewed or was granted the
    /// hold; `None` for holds taken inside MULTI or a script, or before sessions existed.
    pub session: Option<SessionRef>,
    /// Reentrant holds: the lock is released when this drops to zero.
    pub count: u32,
    pub mode: LockMode,
    /// Granted from the queue and not yet confirmed by any command of the owner: if the
    /// waiting client is gone before it learns of the grant, the grant is given back. Its
    /// record (`UnconfirmedGrant`) is in the queue's box.
    pub(super) unconfirmed: bool,
}

/// The holders of a lock. Almost every lock has one (exclusive, or a lone reader): it is
/// kept inline, without an allocation of its own; two or more go to a vector. Read it as
/// a slice; change it through its methods, which keep each count in one form (none, one,
/// many), so equal holders compare equal. Persisted as the sequence it reads as.
///
/// Unlike a `SmallVec<[Holder; 1]>` (56 bytes: a capacity next to the holder) this is the
/// holder's 48 bytes, as the vector and the empty form fit in its unused values, and so is
/// a lock's `Value` around it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Holders(HoldersForm);

#[derive(Clone, Default, PartialEq, Eq)]
enum HoldersForm {
    #[default]
    None,
    One(Holder),
    /// Two or more.
    Many(Vec<Holder>),
}

impl std::ops::Deref for Holders {
    type Target = [Holder];

    fn deref(&self) -> &[Holder] {
        match &self.0 {
            HoldersForm::None => &[],
            HoldersForm::One(holder) => std::slice::from_ref(holder),
            HoldersForm::Many(holders) => holders,
        }
    }
}

impl std::ops::DerefMut for Holders {
    fn deref_mut(&mut self) -> &mut [Holder] {
        match &mut self.0 {
            HoldersForm::None => &mut [],
            HoldersForm::One(holder) => std::slice::from_mut(holder),
            HoldersForm::Many(holders) => holders,
        }
    }
}

impl Holders {
    pub(super) fn from_vec(mut holders: Vec<Holder>) -> Holders {
        Holders(match holders.len() {
            0 => HoldersForm::None,
            1 => HoldersForm::One(holders.pop().expect("one holder")),
            _ => HoldersForm::Many(holders),
        })
    }

    pub fn push(&mut self, holder: Holder) {
        self.0 = match std::mem::take(&mut self.0) {
            HoldersForm::None => HoldersForm::One(holder),
            HoldersForm::One(first) => HoldersForm::Many(vec![first, holder]),
            HoldersForm::Many(mut holders) => {
                holders.push(holder);
                HoldersForm::Many(holders)
            }
        };
    }

    pub fn remove(&mut self, index: usize) -> Holder {
        match std::mem::take(&mut self.0) {
            HoldersForm::One(holder) if index == 0 => holder,
            HoldersForm::Many(mut holders) if index < holders.len() => {
                let removed = holders.remove(index);
                *self = Holders::from_vec(holders);
                removed
            }
            form => {
                self.0 = form;
                panic!("no holder at index {index}");
            }
        }
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&Holder) -> bool) {
        match &mut self.0 {
            HoldersForm::None => {}
            HoldersForm::One(holder) => {
                if !keep(holder) {
                    self.0 = HoldersForm::None;
                }
            }
            HoldersForm::Many(holders) => {
                holders.retain(keep);
                if holders.len() < 2 {
                    *self = Holders::from_vec(std::mem::take(holders));
                }
            }
        }
    }

    pub fn clear(&mut self) {
        self.0 = HoldersForm::None;
    }
}

impl std::fmt::Debug for Holders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Holders {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Holders {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Holders, D::Error> {
        Vec::deserialize(deserializer).map(Holders::from_vec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_keep_one_form_per_count_and_persist_as_a_sequence() {
        let holder = |name: &str, token: u64| Holder {
            owner: Box::from(name.as_bytes()),
            token,
            lease_deadline_ms: 100,
            session: None,
            count: 1,
            mode: LockMode::Shared,
            unconfirmed: false,
        };
        let mut built = Holders::default();
        for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
            built.push(holder(name, i as u64));
        }
        assert_eq!(built.remove(1).owner[..], *b"b");
        built.retain(|h| &h.owner[..] != b"c");
        // One holder left, reached by way of the vector: the same as one pushed alone.
        let mut alone = Holders::default();
        alone.push(holder("a", 0));
        assert_eq!(built, alone);
        assert!(matches!(built.0, HoldersForm::One(_)));
        let codec = bincode::DefaultOptions::new();
        use bincode::Options;
        let as_vec = codec.serialize(&vec![holder("a", 0)]).unwrap();
        assert_eq!(codec.serialize(&built).unwrap(), as_vec);
        assert_eq!(codec.deserialize::<Holders>(&as_vec).unwrap(), built);
        built.remove(0);
        assert_eq!(built, Holders::default());
        assert_eq!(
            std::mem::size_of::<Holders>(),
            std::mem::size_of::<Holder>()
        );
    }
}
