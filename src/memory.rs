//! The process's memory, beyond what Rust's allocator API covers.

// Links mimalloc into every build of the library (tests included), not only the binary
// that installs it as the global allocator: `mi_collect` below must resolve.
extern crate mimalloc;

/// Asks mimalloc (linked in as the binary's global allocator) to return the free pages it
/// still holds to the OS. Without it, the memory start-up freed stays resident until the
/// allocator's next purge, which an idle node may never reach: measured with
/// scripts/memory.sh, 489 MB of RSS after a restart with a million locks rather than 357.
/// Call it after work that dropped large buffers, not on every request: it walks the heap.
pub fn return_freed_memory() {
    extern "C" {
        /// mimalloc's `void mi_collect(bool force)`.
        fn mi_collect(force: bool);
    }
    // SAFETY: mi_collect takes no pointers and may be called from any thread at any time;
    // with `force` it frees and purges whatever it can.
    unsafe { mi_collect(true) }
}

/// The process's resident memory in bytes (`/proc/self/statm`), 0 if unknown: INFO's
/// `used_memory` and what `maxmemory` is held to.
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}
