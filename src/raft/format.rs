//! The data dir's format version: one record that says how everything in `DATA_DIR/db`
//! and `DATA_DIR/snapshots` is encoded (the Raft log's entries, the vote and marks, the
//! snapshot file around the state machine's own versioned snapshot).
//!
//! A new data dir is marked with this build's version; a data dir from before the mark
//! existed holds version 1 and is marked so. A data dir marked with any other version
//! (written by a later raftlock, after a downgrade, say) is refused at start-up with what
//! to do, rather than read as something it is not. A build that changes one of these
//! encodings raises `DATA_FORMAT_VERSION`, reads the versions before it, and marks a dir
//! only once it writes the new encoding there.

use anyhow::{bail, Context};

use super::keys::{DATA_FORMAT, STATE_KEYSPACE};

/// The data dir format this build writes and reads.
pub const DATA_FORMAT_VERSION: u32 = 1;

/// Checks the data dir's format mark in `db`, or marks a dir that has none (new, or from
/// before the mark) with `DATA_FORMAT_VERSION`.
pub(super) fn check_data_format(db: &fjall::Database) -> anyhow::Result<()> {
    let state = db.keyspace(STATE_KEYSPACE, super::keyspace_options)?;
    match state.get(DATA_FORMAT)? {
        None => {
            let mut batch = db.batch();
            batch.insert(&state, DATA_FORMAT, DATA_FORMAT_VERSION.to_le_bytes());
            batch
                .durability(Some(fjall::PersistMode::SyncAll))
                .commit()
                .context("marking the data dir's format")?;
            Ok(())
        }
        Some(bytes) => {
            let version = <[u8; 4]>::try_from(&*bytes)
                .map(u32::from_le_bytes)
                .map_err(|_| {
                    anyhow::anyhow!(
                        "the data dir's format mark is damaged ({} bytes)",
                        bytes.len()
                    )
                })?;
            if version == DATA_FORMAT_VERSION {
                Ok(())
            } else if version > DATA_FORMAT_VERSION {
                bail!(
                    "this data dir was written by a newer raftlock (data format {version}; this build reads format {DATA_FORMAT_VERSION}): run that raftlock or a later one, or restore a backup into a new data dir (docs/OPERATIONS.md, \"Upgrades\")"
                )
            } else {
                bail!("this data dir has an unknown data format {version} (this build reads format {DATA_FORMAT_VERSION})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::open_database;

    #[test]
    fn a_new_data_dir_is_marked_and_opens_again() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_database(dir.path()).unwrap();
        let state = db
            .keyspace(STATE_KEYSPACE, super::super::keyspace_options)
            .unwrap();
        assert_eq!(
            state.get(DATA_FORMAT).unwrap().as_deref(),
            Some(&DATA_FORMAT_VERSION.to_le_bytes()[..])
        );
        drop((state, db));
        open_database(dir.path()).unwrap();
    }

    #[test]
    fn a_data_dir_of_a_later_format_is_refused_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_database(dir.path()).unwrap();
        let state = db
            .keyspace(STATE_KEYSPACE, super::super::keyspace_options)
            .unwrap();
        state
            .insert(DATA_FORMAT, (DATA_FORMAT_VERSION + 1).to_le_bytes())
            .unwrap();
        let err = check_data_format(&db).unwrap_err().to_string();
        assert!(err.contains("written by a newer raftlock"), "{err}");
        assert!(
            err.contains(&format!("data format {}", DATA_FORMAT_VERSION + 1)),
            "{err}"
        );
        state.insert(DATA_FORMAT, [1u8, 2]).unwrap();
        let err = check_data_format(&db).unwrap_err().to_string();
        assert!(err.contains("damaged"), "{err}");
    }
}
