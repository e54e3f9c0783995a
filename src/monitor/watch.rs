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
        if self.checked_at.is_some_and(|t| t.elapsed() < RELOAD_CHECK) {
            return false;
        }
        self.checked_at = Some(Instant::now());
        let stamp = FileStamp::of(path);
        let changed = stamp != self.stamp;
        self.stamp = stamp;
        changed
    }
}

/// What tells a changed file from the one already read.
#[derive(Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode: meta.ino(),
        })
    }
}
