//! Small files kept across crashes: written through a temp file and a rename, so that a
//! crash leaves the old content or the new, never part of one, and directories synced
//! so that the rename (or a new file, or a removal) itself survives a power failure.
//! Every crate that keeps state on disk uses these: the logs' checkpoints, the metadata
//! quorum's log and snapshots, the delay timer's checkpoint, the partitions' metadata.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Replaces `path` with `contents` durably: temp file, fsync, rename, fsync of the
/// directory (a rename is only durable once its directory is).
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_through_temp(path, contents, true)?;
    sync_parent(path)
}

/// Replaces `path` with `contents` through a temp file and a rename, so the name never
/// shows a partial file, and syncs nothing: a crash may leave the file empty or missing.
/// For a file its reader can rebuild; [`sync_written`] makes it durable later.
pub fn write_unsynced(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_through_temp(path, contents, false)
}

/// Makes `path`, written by [`write_unsynced`], durable: its data, then its directory
/// entry.
pub fn sync_written(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()?;
    sync_parent(path)
}

/// Syncs the directory `dir`, so that entries created, renamed or removed in it survive
/// a power failure.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Syncs the directory holding `path`.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    sync_dir(parent(path))
}

/// Reads `path`, or `None` if it does not exist.
pub fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The temp file `path` is written through: `<path>.tmp`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().expect("a file path").to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

fn write_through_temp(path: &Path, contents: &[u8], sync: bool) -> io::Result<()> {
    let tmp = tmp_path(path);
    {
        let mut file = File::create(&tmp)?;
        file.write_all(contents)?;
        if sync {
            file.sync_all()?;
        }
    }
    fs::rename(&tmp, path)
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_and_leave_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vote.json");
        assert_eq!(read_optional(&path).expect("read"), None);
        write_atomically(&path, b"one").expect("write");
        write_atomically(&path, b"two").expect("write");
        assert_eq!(
            read_optional(&path).expect("read").as_deref(),
            Some(&b"two"[..])
        );
        assert!(!tmp_path(&path).exists());

        write_unsynced(&path, b"three").expect("write");
        sync_written(&path).expect("sync");
        assert_eq!(fs::read(&path).expect("read"), b"three");
        assert!(!tmp_path(&path).exists());
    }

    #[test]
    fn a_bare_file_name_lives_in_the_current_directory() {
        assert_eq!(parent(Path::new("vote.json")), Path::new("."));
        assert_eq!(tmp_path(Path::new("a/b.json")), Path::new("a/b.json.tmp"));
    }
}
