//! The data dir's free space, watched so that a filling disk refuses writes cleanly
//! (`MISCONF`, as Redis answers when it cannot persist) before a write can fail half-way:
//! reads go on, and writes resume by themselves once space is freed. A write that fails
//! anyway, or a failed fsync, stops the node (`raft::log_store`): after a failed fsync the
//! page cache cannot be trusted, so nothing more is acknowledged from it.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Free bytes not yet measured.
const UNKNOWN: u64 = u64::MAX;

/// Calls `measure` on `guard` every `interval`, on a task that ends once the guard is
/// dropped (the disk and memory guards).
pub(super) fn measure_every<T: Send + Sync + 'static>(
    guard: &Arc<T>,
    interval: Duration,
    measure: fn(&T),
) {
    let watched = Arc::downgrade(guard);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(guard) = watched.upgrade() else {
                return;
            };
            measure(&guard);
        }
    });
}

/// What the node knows of its data dir's disk.
#[derive(Debug)]
pub struct DiskGuard {
    data_dir: PathBuf,
    min_free_bytes: u64,
    free_bytes: AtomicU64,
}

impl DiskGuard {
    /// Measures now, then every `interval` on a task of its own.
    pub fn start(data_dir: &Path, min_free_bytes: u64, interval: Duration) -> Arc<DiskGuard> {
        let guard = Arc::new(DiskGuard {
            data_dir: data_dir.to_path_buf(),
            min_free_bytes,
            free_bytes: AtomicU64::new(UNKNOWN),
        });
        guard.measure();
        measure_every(&guard, interval, DiskGuard::measure);
        guard
    }

    fn measure(&self) {
        match free_bytes(&self.data_dir) {
            Ok(free) => {
                let before = self.free_bytes.swap(free, Ordering::Relaxed);
                let (was_low, low) = (self.is_low(before), self.is_low(free));
                if low && !was_low {
                    tracing::error!(
                        free_bytes = free,
                        min_free_disk_bytes = self.min_free_bytes,
                        "the data dir's disk is nearly full: writes are refused until space is freed"
                    );
                } else if was_low && !low {
                    tracing::warn!(free_bytes = free, "disk space freed: writes resume");
                }
            }
            Err(err) => tracing::warn!(%err, "cannot measure the data dir's free space"),
        }
    }

    fn is_low(&self, free: u64) -> bool {
        free != UNKNOWN && free < self.min_free_bytes
    }

    /// Free bytes on the data dir's disk at the last measure, if measured.
    pub fn free_bytes(&self) -> Option<u64> {
        Some(self.free_bytes.load(Ordering::Relaxed)).filter(|&free| free != UNKNOWN)
    }

    /// The error a write gets while the disk is below its minimum, in Redis's words.
    pub fn write_refusal(&self) -> Option<String> {
        let free = self.free_bytes.load(Ordering::Relaxed);
        self.is_low(free).then(|| {
            format!(
                "MISCONF Errors writing to the Raft log: No space left on device ({free} bytes free, min-free-disk-bytes is {}); writes resume once space is freed",
                self.min_free_bytes
            )
        })
    }
}

/// Bytes an unprivileged writer may still use on the filesystem holding `path`.
fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("data dir path holds a NUL byte"))?;
    // SAFETY: `path` is a valid NUL-terminated string and `stat` a writable statvfs that
    // lives across the call.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_dirs_free_space_is_measured() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).unwrap() > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }

    fn guard(min_free_bytes: u64, free: u64) -> DiskGuard {
        DiskGuard {
            data_dir: PathBuf::from("/"),
            min_free_bytes,
            free_bytes: AtomicU64::new(free),
        }
    }

    #[test]
    fn writes_are_refused_only_below_the_minimum() {
        assert_eq!(guard(100, 100).write_refusal(), None);
        assert_eq!(guard(100, UNKNOWN).write_refusal(), None);
        let refusal = guard(100, 99).write_refusal().expect("refused");
        assert!(refusal.starts_with("MISCONF "), "{refusal}");
        assert!(refusal.contains("99 bytes free"), "{refusal}");
        assert_eq!(guard(0, 0).write_refusal(), None);
    }
}
