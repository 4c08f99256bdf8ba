//! Third-party clients and browsers run as child processes against the real binary: the
//! Python that has the pinned packages (tests/compat/requirements.txt), and a runner that
//! fails with the suite's output and the servers' logs when the suite fails or hangs.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where the compatibility suites live.
pub fn compat_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("compat")
}

/// How long one suite may run before it is killed and the test fails. The suites take
/// seconds; this bound is for a hang, not for speed.
pub const SUITE_TIMEOUT: Duration = Duration::from_secs(600);

/// `program` on PATH, if it is there.
pub fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

/// The Python that has the pinned packages: `RAFTLOCK_COMPAT_PYTHON` (set by
/// scripts/test.sh), else the venv scripts/test.sh makes, else `python3` on PATH.
/// Fails when the machine has no Python 3 at all: scripts/test.sh installs it.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("RAFTLOCK_COMPAT_PYTHON") {
        let python = PathBuf::from(python);
        assert!(
            python.is_file() || on_path(&python.to_string_lossy()).is_some(),
            "RAFTLOCK_COMPAT_PYTHON={} does not exist",
            python.display()
        );
        return python;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/compat-venv/bin/python");
    if venv.is_file() {
        return venv;
    }
    on_path("python3").expect(
        "python3 is not installed: scripts/test.sh installs it (apt-get install python3 python3-venv)",
    )
}

/// Runs one suite, killing it if it runs past SUITE_TIMEOUT; panics with its output and
/// `log()` (the servers' logs) unless it exits 0.
pub fn run_suite_with_log(what: &str, log: impl Fn() -> String, mut command: Command) {
    command
        .current_dir(compat_dir())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|err| panic!("start {what}: {err}"));
    let pipe = |mut stream: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = pipe(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = pipe(Box::new(child.stderr.take().expect("piped stderr")));

    let deadline = Instant::now() + SUITE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the suite") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            // This child only, by its PID.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    match status {
        Some(status) if status.success() => eprintln!("{what} passed\n{output}"),
        Some(status) => panic!(
            "{what} failed ({status})\n{output}\n--- raftlock log ---\n{}",
            log()
        ),
        None => panic!(
            "{what} ran past {SUITE_TIMEOUT:?} and was killed\n{output}\n--- raftlock log ---\n{}",
            log()
        ),
    }
}
