//! The backup file: what `raftlock backup` writes and `raftlock restore` reads.
//!
//! ```text
//! magic         16 bytes  "RAFTLOCK-BACKUP\n"
//! version        4 bytes  format version, u32 little-endian (1)
//! body length    8 bytes  u64 little-endian
//! body SHA-1    20 bytes
//! body                    the state machine's snapshot (`Keyspace::to_snapshot`: its own
//!                         format version first, then keys, locks, counters, scripts)
//! ```
//!
//! A file that is truncated, padded, altered or written by a later format is refused
//! with what is wrong, never read as something else. Files are written beside their
//! destination, fsynced and renamed over it, so a crash leaves the old file or the new.

use std::io::Write;
use std::path::Path;

const MAGIC: &[u8; 16] = b"RAFTLOCK-BACKUP\n";
/// The format this build writes and the newest it reads.
pub const BACKUP_FORMAT_VERSION: u32 = 1;
const HEADER_BYTES: usize = 16 + 4 + 8 + 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BackupError {
    #[error("not a raftlock backup (it does not start with the backup header)")]
    NotABackup,
    #[error(
        "backup format version {0} is newer than this raftlock reads (up to {BACKUP_FORMAT_VERSION}): restore it with a newer raftlock"
    )]
    NewerFormat(u32),
    #[error("the backup is truncated: it ends inside its header")]
    ShortHeader,
    #[error("the backup is truncated or padded: its header says {expected} bytes of state, the file holds {found}")]
    Length { expected: u64, found: u64 },
    #[error("the backup is corrupted: its checksum does not match its contents")]
    Checksum,
}

/// The backup file of `body` (a state machine snapshot).
pub fn encode(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&BACKUP_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&sha1_smol::Sha1::from(body).digest().bytes());
    out.extend_from_slice(body);
    out
}

/// The body of backup file `bytes`, once its header and checksum are verified.
pub fn decode(bytes: &[u8]) -> Result<&[u8], BackupError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(BackupError::NotABackup);
    }
    if bytes.len() < HEADER_BYTES {
        return Err(BackupError::ShortHeader);
    }
    let word = |at: usize, n: usize| &bytes[at..at + n];
    let version = u32::from_le_bytes(word(16, 4).try_into().expect("4 bytes"));
    if version > BACKUP_FORMAT_VERSION || version == 0 {
        return Err(BackupError::NewerFormat(version));
    }
    let expected = u64::from_le_bytes(word(20, 8).try_into().expect("8 bytes"));
    let body = &bytes[HEADER_BYTES..];
    if body.len() as u64 != expected {
        return Err(BackupError::Length {
            expected,
            found: body.len() as u64,
        });
    }
    if sha1_smol::Sha1::from(body).digest().bytes() != word(28, 20) {
        return Err(BackupError::Checksum);
    }
    Ok(body)
}

/// Writes `bytes` to `path` whole or not at all: to a file beside it, fsynced, renamed
/// over it, and the directory fsynced.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let next = path.with_file_name(name);
    let mut file = std::fs::File::create(&next)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&next, path)?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_decodes_to_its_body() {
        let file = encode(b"state bytes");
        assert_eq!(decode(&file), Ok(&b"state bytes"[..]));
        assert_eq!(decode(&encode(b"")), Ok(&b""[..]));
    }

    #[test]
    fn altered_truncated_padded_and_foreign_files_are_refused() {
        let file = encode(b"state bytes");
        let mut altered = file.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(decode(&altered), Err(BackupError::Checksum));
        assert_eq!(
            decode(&file[..file.len() - 1]),
            Err(BackupError::Length {
                expected: 11,
                found: 10
            })
        );
        let mut padded = file.clone();
        padded.push(0);
        assert!(matches!(decode(&padded), Err(BackupError::Length { .. })));
        assert_eq!(
            decode(b"*1\r\n$4\r\nPING\r\n"),
            Err(BackupError::NotABackup)
        );
        assert_eq!(decode(&file[..20]), Err(BackupError::ShortHeader));
    }

    #[test]
    fn a_later_format_is_refused_not_misread() {
        let mut file = encode(b"state bytes");
        file[16..20].copy_from_slice(&(BACKUP_FORMAT_VERSION + 1).to_le_bytes());
        let err = decode(&file).unwrap_err();
        assert_eq!(err, BackupError::NewerFormat(BACKUP_FORMAT_VERSION + 1));
        assert!(err.to_string().contains("newer than this raftlock reads"));
    }

    #[test]
    fn a_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.backup");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
