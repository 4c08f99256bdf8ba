//! SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs: what one connection listens
//! to, kept in its session and mirrored in the node's registry (`PubSub`). PUBSUB answers
//! from the registry, so it counts this node's subscribers only, as Redis Cluster does.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::subscribers::{Inbox, Kind};
use super::Node;
use crate::reply::Reply;

/// What one connection is subscribed to.
#[derive(Default)]
pub(super) struct Subscriptions {
    channels: BTreeSet<Bytes>,
    patterns: BTreeSet<Bytes>,
    shard_channels: BTreeSet<Bytes>,
    /// Created by the first subscription and kept: messages queue here.
    pub inbox: Option<Inbox>,
}

impl Subscriptions {
    /// In RESP2 a connection with any subscription is in subscribe mode.
    pub fn active(&self) -> bool {
        !(self.channels.is_empty() && self.patterns.is_empty() && self.shard_channels.is_empty())
    }

    fn set(&mut self, kind: Kind) -> &mut BTreeSet<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    /// The count Redis reports after each (un)subscription: channels and patterns
    /// together, shard channels on their own.
    fn count(&self, kind: Kind) -> i64 {
        match kind {
            Kind::Shard => self.shard_channels.len() as i64,
            _ => (self.channels.len() + self.patterns.len()) as i64,
        }
    }
}

fn confirmation(word: &str, name: Option<&Bytes>, count: i64) -> Reply {
    Reply::Push(vec![
        Reply::bulk(word.to_string()),
        name.map_or(Reply::Nil, |n| Reply::Bulk(n.clone())),
        Reply::Int(count),
    ])
}

/// SUBSCRIBE, PSUBSCRIBE or SSUBSCRIBE: one reply per channel, as Redis sends.
pub(super) fn subscribe(
    node: &Node,
    client: u64,
    subs: &mut Subscriptions,
    kind: Kind,
    word: &str,
    names: &[Bytes],
) -> Vec<Reply> {
    let subscriber = subs.inbox.get_or_insert_with(Inbox::new).subscriber.clone();
    names
        .iter()
        .map(|name| {
            let name = Bytes::copy_from_slice(name);
            if subs.set(kind).insert(name.clone()) {
                node.pubsub.subscribe(kind, &name, client, &subscriber);
            }
            confirmation(word, Some(&name), subs.count(kind))
        })
        .collect()
}

/// UNSUBSCRIBE, PUNSUBSCRIBE or SUNSUBSCRIBE (of every channel without names).
pub(super) fn unsubscribe(
    node: &Node,
    client: u64,
    subs: &mut Subscriptions,
    kind: Kind,
    word: &str,
    names: &[Bytes],
) -> Vec<Reply> {
    let names: Vec<Bytes> = if names.is_empty() {
        subs.set(kind).iter().cloned().collect()
    } else {
        names.to_vec()
    };
    if names.is_empty() {
        return vec![confirmation(word, None, subs.count(kind))];
    }
    names
        .iter()
        .map(|name| {
            if subs.set(kind).remove(name) {
                node.pubsub.unsubscribe(kind, name, client);
            }
            confirmation(word, Some(name), subs.count(kind))
        })
        .collect()
}

/// Leaves every subscription (RESET, disconnect).
pub(super) fn leave_all(node: &Node, client: u64, subs: &mut Subscriptions) {
    for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
        for name in std::mem::take(subs.set(kind)) {
            node.pubsub.unsubscribe(kind, &name, client);
        }
    }
}

/// PUBSUB CHANNELS|NUMSUB|NUMPAT|SHARDCHANNELS|SHARDNUMSUB, for this node.
pub(super) fn pubsub(node: &Node, argv: &[Bytes]) -> Reply {
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_uppercase();
    let args = &argv[2..];
    match sub.as_str() {
        "CHANNELS" | "SHARDCHANNELS" if args.len() <= 1 => {
            let kind = if sub == "CHANNELS" {
                Kind::Channel
            } else {
                Kind::Shard
            };
            let names = node.pubsub.channels(kind, args.first().map(|p| &p[..]));
            Reply::Array(names.into_iter().map(Reply::Bulk).collect())
        }
        "NUMSUB" | "SHARDNUMSUB" => {
            let kind = if sub == "NUMSUB" {
                Kind::Channel
            } else {
                Kind::Shard
            };
            // A flat array of channel, count, ... under RESP3 too, as Redis answers (a
            // map here broke clients that read it as pairs).
            Reply::Array(
                args.iter()
                    .flat_map(|name| {
                        [
                            Reply::Bulk(name.clone()),
                            Reply::Int(node.pubsub.count(kind, name) as i64),
                        ]
                    })
                    .collect(),
            )
        }
        "NUMPAT" if args.is_empty() => Reply::Int(node.pubsub.pattern_count() as i64),
        "CHANNELS" | "SHARDCHANNELS" | "NUMPAT" => Reply::Error(format!(
            "ERR wrong number of arguments for 'pubsub|{}' command",
            sub.to_ascii_lowercase()
        )),
        _ => Reply::Error(format!(
            "ERR unknown subcommand '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(&argv[1])
        )),
    }
}
