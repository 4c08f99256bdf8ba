//! This node's subscribers. PUBLISH is a Raft entry, so every node applies it and hands
//! the message to its own subscribers here; a lock released on any node's watch
//! (UNLOCK, lease expiry, DEL) is announced the same way on `raftlock:released:<resource>`.
//!
//! Each subscriber has an outgoing queue bounded in bytes (`pubsub_output_limit_bytes`,
//! as Redis's `client-output-buffer-limit pubsub`): a subscriber that falls that far
//! behind is disconnected rather than allowed to grow the node's memory.

use crate::state::notify::{self, NotifyFlags};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};

use crate::reply::Reply;
use crate::state::{glob, Event, LockEvent};

/// The channel a lock's release is announced on (the message is the resource).
pub const RELEASED_CHANNEL_PREFIX: &str = "raftlock:released:";

/// Bytes a message costs on a subscriber's queue besides its channel and payload.
const MESSAGE_OVERHEAD_BYTES: usize = 32;

/// The three namespaces of subscriptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

/// The sending side of one connection's queue; the registry keeps a clone per
/// subscription.
#[derive(Clone)]
pub struct Subscriber {
    tx: mpsc::UnboundedSender<(Reply, usize)>,
    queued_bytes: Arc<AtomicUsize>,
    overflowed: Arc<Notify>,
}

/// The receiving side, owned by the connection.
pub struct Inbox {
    pub subscriber: Subscriber,
    rx: mpsc::UnboundedReceiver<(Reply, usize)>,
    /// Notified once the queue went past its limit: the connection then closes.
    pub overflowed: Arc<Notify>,
}

impl Inbox {
    pub fn new() -> Inbox {
        let (tx, rx) = mpsc::unbounded_channel();
        let overflowed = Arc::new(Notify::new());
        Inbox {
            subscriber: Subscriber {
                tx,
                queued_bytes: Arc::new(AtomicUsize::new(0)),
                overflowed: overflowed.clone(),
            },
            rx,
            overflowed,
        }
    }

    /// The next message (waits for one).
    pub async fn recv(&mut self) -> Option<Reply> {
        let (message, cost) = self.rx.recv().await?;
        self.subscriber
            .queued_bytes
            .fetch_sub(cost, Ordering::Relaxed);
        Some(message)
    }

    /// A message already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Reply> {
        let (message, cost) = self.rx.try_recv().ok()?;
        self.subscriber
            .queued_bytes
            .fetch_sub(cost, Ordering::Relaxed);
        Some(message)
    }
}

type Members = HashMap<u64, Subscriber>;

#[derive(Default)]
struct Registry {
    channels: HashMap<Bytes, Members>,
    patterns: HashMap<Bytes, Members>,
    shard_channels: HashMap<Bytes, Members>,
}

impl Registry {
    fn of(&mut self, kind: Kind) -> &mut HashMap<Bytes, Members> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }
}

pub struct PubSub {
    registry: Mutex<Registry>,
    output_limit_bytes: usize,
    notify: NotifyFlags,
}

impl PubSub {
    pub fn new(output_limit_bytes: usize, notify: NotifyFlags) -> PubSub {
        PubSub {
            registry: Mutex::new(Registry::default()),
            output_limit_bytes,
            notify,
        }
    }

    /// The node's `notify-keyspace-events` (CONFIG GET and SET).
    pub fn notify(&self) -> &NotifyFlags {
        &self.notify
    }

    pub fn subscribe(&self, kind: Kind, name: &Bytes, client: u64, subscriber: &Subscriber) {
        let mut registry = self.registry.lock().expect("pubsub lock");
        registry
            .of(kind)
            .entry(name.clone())
            .or_default()
            .insert(client, subscriber.clone());
    }

    pub fn unsubscribe(&self, kind: Kind, name: &[u8], client: u64) {
        let mut registry = self.registry.lock().expect("pubsub lock");
        let map = registry.of(kind);
        if let Some(members) = map.get_mut(name) {
            members.remove(&client);
            if members.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Hands apply's messages and lock releases to this node's subscribers.
    pub fn deliver(&self, events: &[Event]) {
        for event in events {
            match event {
                Event::Published {
                    channel,
                    message,
                    sharded,
                } => {
                    self.publish(channel, message, *sharded);
                }
                Event::Keyspace { event, key } => self.publish_notification(event, key),
                Event::Lock(LockEvent::Released { resource }) => {
                    let mut channel = RELEASED_CHANNEL_PREFIX.as_bytes().to_vec();
                    channel.extend_from_slice(resource);
                    self.publish(&Bytes::from(channel), resource, false);
                }
                _ => {}
            }
        }
    }

    /// Publishes a keyspace notification on the channels the node's setting turns on,
    /// as Redis does: `__keyspace@0__:<key>` with the event, `__keyevent@0__:<event>`
    /// with the key.
    fn publish_notification(&self, event: &'static str, key: &Bytes) {
        let flags = self.notify.get();
        let event_bytes = Bytes::from_static(event.as_bytes());
        if flags & notify::class::KEYSPACE != 0 {
            let mut channel = b"__keyspace@0__:".to_vec();
            channel.extend_from_slice(key);
            self.publish(&Bytes::from(channel), &event_bytes, false);
        }
        if flags & notify::class::KEYEVENT != 0 {
            let mut channel = b"__keyevent@0__:".to_vec();
            channel.extend_from_slice(event.as_bytes());
            self.publish(&Bytes::from(channel), key, false);
        }
    }

    /// Sends `message` to the channel's subscribers (and, unless sharded, to every
    /// matching pattern's); returns how many received it.
    fn publish(&self, channel: &Bytes, message: &Bytes, sharded: bool) -> usize {
        let registry = self.registry.lock().expect("pubsub lock");
        let cost = channel.len() + message.len() + MESSAGE_OVERHEAD_BYTES;
        let mut receivers = 0;
        if sharded {
            for subscriber in registry
                .shard_channels
                .get(channel)
                .into_iter()
                .flat_map(|m| m.values())
            {
                let frame = vec![
                    Reply::bulk("smessage"),
                    Reply::Bulk(channel.clone()),
                    Reply::Bulk(message.clone()),
                ];
                receivers += self.send(subscriber, Reply::Push(frame), cost);
            }
            return receivers;
        }
        for subscriber in registry
            .channels
            .get(channel)
            .into_iter()
            .flat_map(|m| m.values())
        {
            let frame = vec![
                Reply::bulk("message"),
                Reply::Bulk(channel.clone()),
                Reply::Bulk(message.clone()),
            ];
            receivers += self.send(subscriber, Reply::Push(frame), cost);
        }
        for (pattern, members) in &registry.patterns {
            if !glob::matches(pattern, channel) {
                continue;
            }
            for subscriber in members.values() {
                let frame = vec![
                    Reply::bulk("pmessage"),
                    Reply::Bulk(pattern.clone()),
                    Reply::Bulk(channel.clone()),
                    Reply::Bulk(message.clone()),
                ];
                receivers += self.send(subscriber, Reply::Push(frame), cost + pattern.len());
            }
        }
        receivers
    }

    /// Queues one message; past the limit the subscriber is told to go instead.
    fn send(&self, subscriber: &Subscriber, frame: Reply, cost: usize) -> usize {
        let queued = subscriber.queued_bytes.fetch_add(cost, Ordering::Relaxed) + cost;
        if queued > self.output_limit_bytes {
            subscriber.queued_bytes.fetch_sub(cost, Ordering::Relaxed);
            subscriber.overflowed.notify_one();
            return 0;
        }
        match subscriber.tx.send((frame, cost)) {
            Ok(()) => 1,
            Err(_) => 0,
        }
    }

    /// Subscribers on this node a message on `channel` would reach (PUBLISH's reply).
    pub fn receivers(&self, channel: &[u8], sharded: bool) -> usize {
        let registry = self.registry.lock().expect("pubsub lock");
        if sharded {
            return registry.shard_channels.get(channel).map_or(0, HashMap::len);
        }
        let direct = registry.channels.get(channel).map_or(0, HashMap::len);
        let by_pattern: usize = registry
            .patterns
            .iter()
            .filter(|(pattern, _)| glob::matches(pattern, channel))
            .map(|(_, members)| members.len())
            .sum();
        direct + by_pattern
    }

    /// Channels with at least one subscriber, matching `pattern` if given, sorted.
    pub fn channels(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let mut registry = self.registry.lock().expect("pubsub lock");
        let names: BTreeSet<Bytes> = registry
            .of(kind)
            .keys()
            .filter(|name| pattern.is_none_or(|p| glob::matches(p, name)))
            .cloned()
            .collect();
        names.into_iter().collect()
    }

    /// Subscribers of one channel (PUBSUB NUMSUB).
    pub fn count(&self, kind: Kind, name: &[u8]) -> usize {
        let mut registry = self.registry.lock().expect("pubsub lock");
        registry.of(kind).get(name).map_or(0, HashMap::len)
    }

    /// Patterns with at least one subscriber (PUBSUB NUMPAT).
    pub fn pattern_count(&self) -> usize {
        self.registry.lock().expect("pubsub lock").patterns.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(channel: &str, message: &str) -> Event {
        Event::Published {
            channel: Bytes::copy_from_slice(channel.as_bytes()),
            message: Bytes::copy_from_slice(message.as_bytes()),
            sharded: false,
        }
    }

    #[test]
    fn messages_reach_channel_and_pattern_subscribers() {
        let ps = PubSub::new(1 << 20, NotifyFlags::default());
        let mut a = Inbox::new();
        let mut b = Inbox::new();
        ps.subscribe(Kind::Channel, &Bytes::from("news"), 1, &a.subscriber);
        ps.subscribe(Kind::Pattern, &Bytes::from("n*"), 2, &b.subscriber);
        assert_eq!(ps.receivers(b"news", false), 2);
        ps.deliver(&[published("news", "hi"), published("other", "x")]);
        assert_eq!(
            a.try_recv(),
            Some(Reply::Push(vec![
                Reply::bulk("message"),
                Reply::bulk("news"),
                Reply::bulk("hi")
            ]))
        );
        assert!(a.try_recv().is_none());
        assert!(
            matches!(b.try_recv(), Some(Reply::Push(frame)) if frame[0] == Reply::bulk("pmessage"))
        );
        assert!(b.try_recv().is_none());
    }

    #[test]
    fn a_lock_release_is_announced_on_its_channel() {
        let ps = PubSub::new(1 << 20, NotifyFlags::default());
        let mut a = Inbox::new();
        ps.subscribe(
            Kind::Channel,
            &Bytes::from("raftlock:released:r"),
            1,
            &a.subscriber,
        );
        ps.deliver(&[Event::Lock(LockEvent::Released {
            resource: Bytes::from("r"),
        })]);
        assert_eq!(
            a.try_recv(),
            Some(Reply::Push(vec![
                Reply::bulk("message"),
                Reply::bulk("raftlock:released:r"),
                Reply::bulk("r")
            ]))
        );
    }

    #[test]
    fn a_subscriber_past_its_limit_is_told_to_go() {
        let ps = PubSub::new(100, NotifyFlags::default());
        let a = Inbox::new();
        ps.subscribe(Kind::Channel, &Bytes::from("c"), 1, &a.subscriber);
        ps.deliver(&[published("c", "0123456789")]);
        ps.deliver(&[published("c", &"x".repeat(100))]);
        let notified = a.overflowed.notified();
        tokio::pin!(notified);
        assert!(notified.as_mut().enable(), "the permit was stored");
    }

    #[test]
    fn unsubscribing_the_last_member_forgets_the_channel() {
        let ps = PubSub::new(1 << 20, NotifyFlags::default());
        let a = Inbox::new();
        ps.subscribe(Kind::Shard, &Bytes::from("s"), 1, &a.subscriber);
        assert_eq!(ps.channels(Kind::Shard, None), vec![Bytes::from("s")]);
        ps.unsubscribe(Kind::Shard, b"s", 1);
        assert!(ps.channels(Kind::Shard, None).is_empty());
        assert_eq!(ps.count(Kind::Shard, b"s"), 0);
    }
}
