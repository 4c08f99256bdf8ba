//! The cluster id: a name every node of one cluster shares, carried in the handshake of
//! every Raft connection (`handshake.rs`) so that a node of another cluster is refused.
//!
//! It is chosen once and kept in `DATA_DIR/cluster-id`. On a node's first start it is
//! `--cluster-id` if given; otherwise, for `--initial-cluster`, a hash of the member list
//! (every node computes the same one from the same flag); for a fresh single node, random.
//! A node started with `--join` (or an old data dir without the file and without
//! `--initial-cluster`) has none until the first peer that passes the handshake gives it
//! its own, which it then keeps.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::config::raft_transport::MAX_CLUSTER_ID_BYTES;
use crate::config::Config;

/// The file in the data dir that holds the id.
const FILE_NAME: &str = "cluster-id";

/// Checks an id's form: 1 to `MAX_CLUSTER_ID_BYTES` printable ASCII characters, no space.
pub(crate) fn check_text(id: &str) -> anyhow::Result<()> {
    if id.is_empty() || id.len() > MAX_CLUSTER_ID_BYTES {
        bail!(
            "a cluster id is 1 to {MAX_CLUSTER_ID_BYTES} characters, not {}",
            id.len()
        );
    }
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        bail!(
            "a cluster id is printable ASCII without spaces: '{}'",
            id.escape_default()
        );
    }
    Ok(())
}

pub(crate) fn file_path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The id this node starts with (None: to be learned from the first peer), written to
/// the data dir when newly chosen. Call before the data dir's database is opened: a data
/// dir without one is fresh.
pub(crate) fn resolve(config: &Config) -> anyhow::Result<Option<String>> {
    let path = file_path(&config.data_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let stored = text.trim().to_string();
            check_text(&stored).with_context(|| format!("in {}", path.display()))?;
            if let Some(given) = config.cluster_id.as_ref().filter(|g| **g != stored) {
                bail!(
                    "the data dir {} belongs to cluster '{stored}', but --cluster-id says '{given}'",
                    config.data_dir.display()
                );
            }
            return Ok(Some(stored));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let fresh = !config.data_dir.join("db").exists();
    let chosen = if let Some(given) = &config.cluster_id {
        Some(given.clone())
    } else if !config.initial_cluster.is_empty() {
        Some(from_initial_cluster(config))
    } else if fresh && !config.join {
        Some(random_id()?)
    } else {
        None
    };
    if let Some(id) = &chosen {
        store(&config.data_dir, id)?;
    }
    Ok(chosen)
}

/// `ic-` and 16 hex digits of the SHA-256 of the members, in id order: the same on every
/// node given the same `--initial-cluster`, however it was spelled.
fn from_initial_cluster(config: &Config) -> String {
    let canonical: Vec<String> = config
        .initial_cluster
        .iter()
        .map(|(id, m)| format!("{id}={}/{}", m.client_addr, m.raft_addr))
        .collect();
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.join(",").as_bytes());
    format!("ic-{}", hex(&digest.as_ref()[..8]))
}

fn random_id() -> anyhow::Result<String> {
    let mut bytes = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow::anyhow!("no random numbers for a cluster id"))?;
    Ok(format!("r-{}", hex(&bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes the id to the data dir (a new file, fsynced, renamed into place).
pub(crate) fn store(data_dir: &Path, id: &str) -> anyhow::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let path = file_path(data_dir);
    let tmp = path.with_extension("tmp");
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(format!("{id}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_initial_cluster;

    fn config(dir: &Path, initial_cluster: &str) -> Config {
        Config {
            data_dir: dir.to_path_buf(),
            initial_cluster: if initial_cluster.is_empty() {
                Default::default()
            } else {
                parse_initial_cluster(initial_cluster).unwrap()
            },
            ..Config::default()
        }
    }

    #[test]
    fn nodes_of_one_initial_cluster_derive_one_id_and_keep_it() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let members = "1=127.0.0.1:7001/127.0.0.1:8001,2=127.0.0.1:7002/127.0.0.1:8002";
        let reordered = "2=127.0.0.1:7002/127.0.0.1:8002, 1=127.0.0.1:7001/127.0.0.1:8001";
        let id_a = resolve(&config(a.path(), members)).unwrap().unwrap();
        let id_b = resolve(&config(b.path(), reordered)).unwrap().unwrap();
        assert_eq!(id_a, id_b);
        assert!(id_a.starts_with("ic-"), "{id_a}");
        // Kept: a later start with another member list keeps the stored id.
        let later = config(a.path(), "1=127.0.0.1:7001/127.0.0.1:8001");
        assert_eq!(resolve(&later).unwrap().as_deref(), Some(id_a.as_str()));
        let other = resolve(&config(
            tempfile::tempdir().unwrap().path(),
            "1=127.0.0.1:7001/127.0.0.1:8001",
        ))
        .unwrap();
        assert_ne!(other.as_deref(), Some(id_a.as_str()));
    }

    #[test]
    fn an_explicit_id_must_match_the_stored_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path(), "");
        c.cluster_id = Some("prod-locks".into());
        assert_eq!(resolve(&c).unwrap().as_deref(), Some("prod-locks"));
        c.cluster_id = Some("staging".into());
        let err = format!("{:#}", resolve(&c).unwrap_err());
        assert!(err.contains("belongs to cluster 'prod-locks'"), "{err}");
    }

    #[test]
    fn a_joining_node_has_none_and_a_fresh_single_node_a_random_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut joining = config(dir.path(), "");
        joining.join = true;
        assert_eq!(resolve(&joining).unwrap(), None);
        let (x, y) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let one = resolve(&config(x.path(), "")).unwrap().unwrap();
        let two = resolve(&config(y.path(), "")).unwrap().unwrap();
        assert_ne!(one, two);
    }

    #[test]
    fn ids_are_short_printable_words() {
        assert!(check_text("prod-locks").is_ok());
        assert!(check_text("").is_err());
        assert!(check_text("two words").is_err());
        assert!(check_text(&"x".repeat(MAX_CLUSTER_ID_BYTES + 1)).is_err());
    }
}
