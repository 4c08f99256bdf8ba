//! Wall clocks that tests move while nodes run: each node is started with Debian's
//! libfaketime preloaded, reading its offset from a file of its own on every call, and with
//! the monotonic clock left real. A step of a node's wall clock is then what an NTP step or
//! a VM resume does to it.

use std::path::{Path, PathBuf};

/// Where Debian's `faketime` package puts the library.
const LIBFAKETIME_PATHS: [&str; 2] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
];

/// The preloaded library; panics (never skips) when it is missing.
fn libfaketime() -> &'static str {
    LIBFAKETIME_PATHS
        .iter()
        .copied()
        .find(|path| Path::new(path).exists())
        .unwrap_or_else(|| {
            panic!(
                "libfaketime is missing: install Debian's faketime package (scripts/test.sh does)"
            )
        })
}

/// One node's wall clock.
pub struct FakeClock {
    file: PathBuf,
}

impl FakeClock {
    /// A clock reading real time, its offset kept in `file`.
    pub fn new(file: PathBuf) -> FakeClock {
        let clock = FakeClock { file };
        clock.set_offset_s(0);
        clock
    }

    /// The environment a node runs with to read this clock.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("LD_PRELOAD".into(), libfaketime().into()),
            (
                "FAKETIME_TIMESTAMP_FILE".into(),
                self.file.display().to_string(),
            ),
            ("FAKETIME_NO_CACHE".into(), "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
            ("DONT_FAKE_MONOTONIC".into(), "1".into()),
        ]
    }

    /// Sets the wall clock to real time plus `offset_s` seconds (negative: behind).
    pub fn set_offset_s(&self, offset_s: i64) {
        // Written beside and renamed, so a node never reads half a file.
        let next = self.file.with_extension("next");
        std::fs::write(&next, format!("{offset_s:+}\n")).expect("write faketime file");
        std::fs::rename(&next, &self.file).expect("replace faketime file");
    }
}
