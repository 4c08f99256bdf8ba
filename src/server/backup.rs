//! RAFT.BACKUP: a consistent copy of the state machine, as a backup file
//! (`crate::backup_file`), for `raftlock backup`.
//!
//! It runs on the leader (a follower relays it there) after a read barrier, so the copy
//! holds every write acknowledged before the command was sent: it is a linearizable read
//! of the whole state. The state is copied under the read lock (apply waits only for the
//! copy, as for a snapshot) and encoded on a blocking thread.

use std::sync::Arc;

use bytes::Bytes;

use super::cluster::on_leader;
use super::Node;
use crate::backup_file;
use crate::reply::Reply;

pub(super) async fn raft_backup(node: Arc<Node>, argv: Vec<Bytes>) -> Reply {
    if let Ok(relayed) = on_leader(&node, argv).await {
        return relayed;
    }
    if let Err(refusal) = node.read_barrier().await {
        return refusal;
    }
    let image = node.group.state().snapshot_image();
    match tokio::task::spawn_blocking(move || backup_file::encode(&image.encode())).await {
        Ok(file) => Reply::Bulk(Bytes::from(file)),
        Err(err) => Reply::Error(format!("ERR the backup could not be encoded: {err}")),
    }
}
