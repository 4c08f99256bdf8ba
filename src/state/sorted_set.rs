//! The sorted set as a value: members ordered by (score, member bytes) as in Redis, with
//! scores never NaN, and the score intervals ZRANGEBYSCORE and ZCOUNT take.
//!
//! The order is a `BTreeSet`, so a rank costs a walk from the nearer end (O(N)) rather
//! than Redis's O(log N) skip list: fine for semaphores and queues of holders.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::args::parse_f64;
use crate::reply::Reply;

const RANGE_NOT_FLOAT: &str = "ERR min or max is not a float";

/// A score, never NaN, ordered as Redis compares doubles (so -0 equals 0).
#[derive(Clone, Copy, Debug)]
pub(super) struct Score(f64);

impl PartialEq for Score {
    fn eq(&self, other: &Score) -> bool {
        self.0 == other.0
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Score) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Score) -> Ordering {
        self.0.partial_cmp(&other.0).expect("scores are never NaN")
    }
}

/// A sorted set: the score of each member, and the members in (score, member) order.
/// Persisted as the (member, score) pairs in that order; the lookup map is rebuilt.
#[derive(Clone, Debug, Default)]
pub struct SortedSet {
    scores: HashMap<Bytes, f64>,
    order: BTreeSet<(Score, Bytes)>,
}

impl PartialEq for SortedSet {
    fn eq(&self, other: &SortedSet) -> bool {
        self.order == other.order
    }
}

impl Eq for SortedSet {}

impl Serialize for SortedSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.order.iter().map(|(score, member)| (member, score.0)))
    }
}

impl<'de> Deserialize<'de> for SortedSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SortedSet, D::Error> {
        let pairs = Vec::<(Bytes, f64)>::deserialize(deserializer)?;
        let mut set = SortedSet::default();
        for (member, score) in pairs {
            if score.is_nan() {
                return Err(de::Error::custom("a sorted set score is NaN"));
            }
            if set.insert(member, score).is_some() {
                return Err(de::Error::custom("a sorted set member appears twice"));
            }
        }
        Ok(set)
    }
}

impl SortedSet {
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    pub(super) fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets the member's score; the old score, if it was there.
    pub(super) fn insert(&mut self, member: Bytes, score: f64) -> Option<f64> {
        debug_assert!(!score.is_nan());
        let old = self.scores.insert(member.clone(), score);
        if let Some(old) = old {
            self.order.remove(&(Score(old), member.clone()));
        }
        self.order.insert((Score(score), member));
        old
    }

    pub(super) fn remove(&mut self, member: &[u8]) -> bool {
        match self.scores.remove_entry(member) {
            Some((member, score)) => {
                self.order.remove(&(Score(score), member));
                true
            }
            None => false,
        }
    }

    /// The member's 0-based position in ascending order (descending with `reverse`).
    pub(super) fn rank(&self, member: &[u8], reverse: bool) -> Option<usize> {
        let score = Score(self.score(member)?);
        let below = self
            .order
            .range(..(score, Bytes::copy_from_slice(member)))
            .count();
        Some(if reverse {
            self.len() - 1 - below
        } else {
            below
        })
    }

    /// Members in order, or in reverse order.
    pub(super) fn iter(&self, reverse: bool) -> Box<dyn Iterator<Item = (&Bytes, f64)> + '_> {
        let items = self.order.iter().map(|(score, member)| (member, score.0));
        if reverse {
            Box::new(items.rev())
        } else {
            Box::new(items)
        }
    }

    /// Members whose score is in `range`, in order or in reverse order.
    pub(super) fn in_range(
        &self,
        range: ScoreRange,
        reverse: bool,
    ) -> impl Iterator<Item = (&Bytes, f64)> + '_ {
        let empty = range.is_empty();
        self.iter(reverse)
            .skip_while(move |(_, score)| {
                !empty
                    && if reverse {
                        !range.below_max(*score)
                    } else {
                        !range.above_min(*score)
                    }
            })
            .take_while(move |(_, score)| {
                !empty
                    && if reverse {
                        range.above_min(*score)
                    } else {
                        range.below_max(*score)
                    }
            })
    }

    /// Members in `range`, in order or in reverse order (as Redis's listpack walk).
    pub(super) fn in_lex_range(
        &self,
        range: LexRange,
        reverse: bool,
    ) -> impl Iterator<Item = (&Bytes, f64)> + '_ {
        let empty = range.is_empty();
        let (start, go_on) = (range.clone(), range);
        self.iter(reverse)
            .skip_while(move |(member, _)| {
                !empty
                    && if reverse {
                        !start.below_max(member)
                    } else {
                        !start.above_min(member)
                    }
            })
            .take_while(move |(member, _)| {
                !empty
                    && if reverse {
                        go_on.above_min(member)
                    } else {
                        go_on.below_max(member)
                    }
            })
    }
}

/// One end of a lex interval: `-` and `+` sort below and above every member.
#[derive(Clone, Debug)]
enum LexBound {
    Min,
    Max,
    Member(Bytes, bool),
}

impl LexBound {
    /// Redis's `zslParseLexRangeItem`: `(` exclusive, `[` inclusive, `-` or `+` alone.
    fn parse(arg: &[u8]) -> Option<LexBound> {
        match arg {
            b"-" => Some(LexBound::Min),
            b"+" => Some(LexBound::Max),
            [b'(', rest @ ..] => Some(LexBound::Member(Bytes::copy_from_slice(rest), true)),
            [b'[', rest @ ..] => Some(LexBound::Member(Bytes::copy_from_slice(rest), false)),
            _ => None,
        }
    }

    /// `-` and `+` count as exclusive, as in Redis.
    fn exclusive(&self) -> bool {
        match self {
            LexBound::Min | LexBound::Max => true,
            LexBound::Member(_, exclusive) => *exclusive,
        }
    }

    /// Redis's `sdscmplex` of this bound against `other`.
    fn cmp(&self, other: &LexBound) -> Ordering {
        match (self, other) {
            (LexBound::Min, LexBound::Min) | (LexBound::Max, LexBound::Max) => Ordering::Equal,
            (LexBound::Min, _) | (_, LexBound::Max) => Ordering::Less,
            (LexBound::Max, _) | (_, LexBound::Min) => Ordering::Greater,
            (LexBound::Member(a, _), LexBound::Member(b, _)) => a.cmp(b),
        }
    }

    /// A member against this bound.
    fn cmp_member(&self, member: &[u8]) -> Ordering {
        match self {
            LexBound::Min => Ordering::Less,
            LexBound::Max => Ordering::Greater,
            LexBound::Member(bound, _) => bound.as_ref().cmp(member),
        }
    }
}

/// A member interval as ZRANGEBYLEX takes it (Redis's `zlexrangespec`). Meant for sets
/// whose members share one score; with mixed scores it answers as Redis's small
/// (listpack) sets do: members in order from the first at or past min, while at or
/// before max.
#[derive(Clone, Debug)]
pub(super) struct LexRange {
    min: LexBound,
    max: LexBound,
}

impl LexRange {
    /// Redis's `zslParseLexRange`, with its one error for both bounds.
    pub(super) fn parse(min: &[u8], max: &[u8]) -> Result<LexRange, Reply> {
        match (LexBound::parse(min), LexBound::parse(max)) {
            (Some(min), Some(max)) => Ok(LexRange { min, max }),
            _ => Err(Reply::error("ERR min or max not valid string range item")),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        match self.min.cmp(&self.max) {
            Ordering::Greater => true,
            Ordering::Equal => self.min.exclusive() || self.max.exclusive(),
            Ordering::Less => false,
        }
    }

    pub(super) fn above_min(&self, member: &[u8]) -> bool {
        match self.min.cmp_member(member) {
            Ordering::Less => true,
            Ordering::Equal => !self.min.exclusive(),
            Ordering::Greater => false,
        }
    }

    pub(super) fn below_max(&self, member: &[u8]) -> bool {
        match self.max.cmp_member(member) {
            Ordering::Greater => true,
            Ordering::Equal => !self.max.exclusive(),
            Ordering::Less => false,
        }
    }
}

/// A score interval as ZRANGEBYSCORE takes it: `(` makes a bound exclusive, `-inf` and
/// `+inf` are the open ends.
#[derive(Clone, Copy, Debug)]
pub(super) struct ScoreRange {
    min: f64,
    min_exclusive: bool,
    max: f64,
    max_exclusive: bool,
}

impl ScoreRange {
    /// Redis's `zslParseRange`, with its one error for both bounds.
    pub(super) fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, Reply> {
        let bound = |arg: &[u8]| match arg.strip_prefix(b"(") {
            Some(rest) => parse_f64(rest).map(|value| (value, true)),
            None => parse_f64(arg).map(|value| (value, false)),
        };
        match (bound(min), bound(max)) {
            (Some((min, min_exclusive)), Some((max, max_exclusive))) => Ok(ScoreRange {
                min,
                min_exclusive,
                max,
                max_exclusive,
            }),
            _ => Err(Reply::error(RANGE_NOT_FLOAT)),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.min_exclusive || self.max_exclusive))
    }

    pub(super) fn above_min(&self, score: f64) -> bool {
        if self.min_exclusive {
            score > self.min
        } else {
            score >= self.min
        }
    }

    pub(super) fn below_max(&self, score: f64) -> bool {
        if self.max_exclusive {
            score < self.max
        } else {
            score <= self.max
        }
    }
}
