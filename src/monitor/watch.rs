//! A file looked at once a second at most (the config file, a node's
//! `ca_file`): whether it changed since the last look.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// How often a watched file is checked for changes.
pub(crate) const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// A file looked at (one `stat`) at most once per [`RELOAD_CHECK`].
#[derive(Default)]
pub(crate) struct WatchedFile {
    stamp: Option<FileStamp>,
    checked_at: Option<Instant>,
}

impl WatchedFile {
    /// Whether `path` changed since the last look (from never looked at,
    /// whether it exists); `false` until the next look is due.
    pub(crate) fn changed(&mut self, path: &Path) -> bool {
        self.read_again(path, false)
    }

    /// Whether to read `path` again: it changed, or the last read failed
    /// (`last_failed`: what made it fail, a mode or owner, a directory on
    /// the way, may be fixed without a trace on the file itself); `false`
    /// until the next look is due, so a failing file is retried at most
    /// once per [`RELOAD_CHECK`].
    pub(crate) fn read_again(&mut self, path: &Path, last_failed: bool) -> bool {
        if self.checked_at.is_some_and(|t| t.elapsed() < RELOAD_CHECK) {
            return false;
        }
        self.checked_at = Some(Instant::now());
        let stamp = FileStamp::of(path);
        let changed = stamp != self.stamp;
        self.stamp = stamp;
        changed || last_failed
    }
}

/// What tells a changed file from the one already read. Mode, owner and
/// ctime too: `chmod` and `chown` (fixing a file the agent could not read)
/// change only those (the mode and owner themselves, as two changes within
/// one clock tick may share a ctime).
#[derive(Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    changed: (i64, i64),
    mode: u32,
    owner: (u32, u32),
    len: u64,
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            modified: meta.modified().ok(),
            changed: (meta.ctime(), meta.ctime_nsec()),
            mode: meta.mode(),
            owner: (meta.uid(), meta.gid()),
            len: meta.len(),
            inode: meta.ino(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Waits out the once-a-second limit (the watch's own clock).
    fn next_look(watch: &mut WatchedFile) {
        watch.checked_at = watch.checked_at.map(|t| t - RELOAD_CHECK);
    }

    #[test]
    fn chmod_is_a_change_and_a_failed_read_is_retried_once_a_second() {
        let path = crate::fs::tests::temp_file("watched.toml", "a = 1\n", 0o600);
        let mut watch = WatchedFile::default();
        assert!(watch.changed(&path), "first look");
        next_look(&mut watch);
        assert!(!watch.changed(&path));
        next_look(&mut watch);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(watch.changed(&path), "chmod moves only ctime");
        next_look(&mut watch);
        assert!(!watch.read_again(&path, false));
        next_look(&mut watch);
        assert!(watch.read_again(&path, true), "the last read failed");
        assert!(!watch.read_again(&path, true), "at most once a second");
    }
}
