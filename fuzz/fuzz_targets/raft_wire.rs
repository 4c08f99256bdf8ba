//! The Raft RPC frame reader on arbitrary bytes, read as a stream of request frames (a
//! node serving a peer) and of response frames (a node calling one).
//!
//! Checks: no panic; no allocation beyond `MAX_RAFT_FRAME_BYTES` whatever a length prefix
//! claims (libFuzzer's `-malloc_limit_mb` catches one); and each frame read encodes to a
//! frame that reads back and encodes to the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use raftlock::fuzzing::{read_raft_frames, FrameKind};

fuzz_target!(|data: &[u8]| {
    for kind in [FrameKind::Request, FrameKind::Response] {
        for frame in read_raft_frames(kind, data).reencoded {
            let again = read_raft_frames(kind, &frame);
            assert_eq!(again.error, None, "{kind:?}: a re-encoded frame is refused");
            assert_eq!(
                again.reencoded,
                vec![frame],
                "{kind:?}: encoding is not stable"
            );
        }
    }
});
