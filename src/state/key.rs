//! Keys as the keyspace stores them.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest key kept inline.
const INLINE_BYTES: usize = 22;

/// A key as the keyspace stores it: up to 22 bytes inline, a longer one in a boxed slice of
/// its own. 24 bytes either way, where a `Bytes` takes 32 and, once cloned for an index,
/// another 24-byte allocation for its reference count (plus the allocation of the bytes).
/// The indexes (key deadlines, lock timers) hold copies: an inline key costs them nothing
/// more, a longer one an allocation each.
///
/// Compares, orders and hashes as the bytes it holds, so a map of keys is searched with
/// a `&[u8]`. Persisted as those bytes, as a `Bytes` would be.
#[derive(Clone)]
pub struct Key(Repr);

/// One form per length: inline exactly when the key fits, so equal keys are equal forms.
#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE_BYTES] },
    Boxed(Box<[u8]>),
}

impl From<&[u8]> for Key {
    fn from(key: &[u8]) -> Key {
        if key.len() <= INLINE_BYTES {
            let mut bytes = [0; INLINE_BYTES];
            bytes[..key.len()].copy_from_slice(key);
            Key(Repr::Inline {
                len: key.len() as u8,
                bytes,
            })
        } else {
            Key(Repr::Boxed(Box::from(key)))
        }
    }
}

impl std::ops::Deref for Key {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Boxed(bytes) => bytes,
        }
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        **self == **other
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl Hash for Key {
    /// As the bytes hash, which `Borrow<[u8]>` requires.
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.escape_ascii())
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key's bytes")
            }

            fn visit_bytes<E: serde::de::Error>(self, key: &[u8]) -> Result<Key, E> {
                Ok(Key::from(key))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Key, A::Error> {
                let mut key = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(byte) = seq.next_element()? {
                    key.push(byte);
                }
                Ok(Key::from(&key[..]))
            }
        }

        deserializer.deserialize_bytes(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use bincode::Options;
    use bytes::Bytes;

    use super::*;

    #[test]
    fn a_key_is_its_bytes_inline_or_boxed() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        let hasher = std::collections::hash_map::RandomState::new();
        let codec = bincode::DefaultOptions::new();
        for len in [0, 1, INLINE_BYTES - 1, INLINE_BYTES, INLINE_BYTES + 1, 300] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let key = Key::from(&bytes[..]);
            assert_eq!(matches!(key.0, Repr::Inline { .. }), len <= INLINE_BYTES);
            assert_eq!(&*key, &bytes[..]);
            assert_eq!(hasher.hash_one(&key), hasher.hash_one(&bytes[..]));
            // Persisted exactly as a `Bytes` of the same bytes.
            let encoded = codec.serialize(&key).unwrap();
            assert_eq!(
                encoded,
                codec.serialize(&Bytes::from(bytes.clone())).unwrap()
            );
            assert_eq!(codec.deserialize::<Key>(&encoded).unwrap(), key);
        }
        let (short, long) = (Key::from(&b"b"[..]), Key::from(&[b'a'; 40][..]));
        assert!(long < short, "ordered as bytes, whatever the form");
        assert_eq!(format!("{:?}", Key::from(&b"a\n"[..])), "b\"a\\n\"");
    }
}
