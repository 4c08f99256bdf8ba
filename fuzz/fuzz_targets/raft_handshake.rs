//! The Raft port's handshake (`src/raft/handshake.rs`) on arbitrary bytes from a peer,
//! at both ends: the listener reading a dialer's messages, the dialer reading a
//! listener's.
//!
//! Checks: no panic, no allocation beyond the handshake's message limit whatever a length
//! prefix claims (libFuzzer's `-malloc_limit_mb` catches one), and that neither end
//! passes: bytes that do not know the secret prove nothing (a MAC of 32 bytes is not
//! guessed).

#![no_main]

use libfuzzer_sys::fuzz_target;
use raftlock::fuzzing::raft_handshake;

fuzz_target!(|data: &[u8]| {
    let (listener_passed, dialer_passed) = raft_handshake(data);
    assert!(!listener_passed, "the listener let in a peer that does not know the secret");
    assert!(!dialer_passed, "the dialer accepted a peer that does not know the secret");
});
