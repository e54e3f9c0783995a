//! The six sync queues of a relation: their names (item keys, stats), their
//! paths in the REST API and which entry field holds an error's reason. The
//! streaming parser of their answers is `stream`.

mod stream;

pub(crate) use stream::read_queue_redacted;
pub use stream::{read_queue, KeepText, QueueSnapshot, UNKNOWN_REASON};

use crate::error::{Error, ErrorKind, Result};
use std::fmt;

/// One of the six sync queues of a relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Queue {
    /// `syncrequests` (`syncevents/syncrequests`).
    SyncRequests,
    /// `blobrequests` (`syncevents/blobrequests`).
    BlobRequests,
    /// `syncresponses` (`syncrequests/syncresponses`).
    SyncResponses,
    /// `blobresponses` (`syncrequests/blobresponses`).
    BlobResponses,
    /// `errorresponses` (`syncrequests/errorresponses`), reasons in `errorReason`.
    ErrorResponses,
    /// `bloberrorresponses` (`syncrequests/bloberrorresponses`), reasons in
    /// `blobErrorReason`.
    BlobErrorResponses,
}

impl Queue {
    /// The six queues, in the order of the stats.
    pub const ALL: [Queue; 6] = [
        Queue::SyncRequests,
        Queue::BlobRequests,
        Queue::SyncResponses,
        Queue::BlobResponses,
        Queue::ErrorResponses,
        Queue::BlobErrorResponses,
    ];

    /// The name used in item keys, stats and the URL's last segment.
    pub fn name(self) -> &'static str {
        match self {
            Queue::SyncRequests => "syncrequests",
            Queue::BlobRequests => "blobrequests",
            Queue::SyncResponses => "syncresponses",
            Queue::BlobResponses => "blobresponses",
            Queue::ErrorResponses => "errorresponses",
            Queue::BlobErrorResponses => "bloberrorresponses",
        }
    }

    /// The path below `relations/{relation}/`.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Queue::SyncRequests => "syncevents/syncrequests",
            Queue::BlobRequests => "syncevents/blobrequests",
            Queue::SyncResponses => "syncrequests/syncresponses",
            Queue::BlobResponses => "syncrequests/blobresponses",
            Queue::ErrorResponses => "syncrequests/errorresponses",
            Queue::BlobErrorResponses => "syncrequests/bloberrorresponses",
        }
    }

    /// The entry field that says why an error entry failed.
    pub fn reason_field(self) -> Option<&'static str> {
        match self {
            Queue::ErrorResponses => Some("errorReason"),
            Queue::BlobErrorResponses => Some("blobErrorReason"),
            _ => None,
        }
    }

    /// The queue with this name, or an error that lists the valid names.
    pub fn parse(name: &str) -> Result<Queue> {
        Queue::ALL
            .into_iter()
            .find(|q| q.name() == name)
            .ok_or_else(|| {
                let valid: Vec<&str> = Queue::ALL.iter().map(|q| q.name()).collect();
                Error::new(
                    ErrorKind::UnknownQueue,
                    format!(
                        "unknown queue {}; valid queues: {}",
                        crate::error::quoted(name),
                        valid.join(", ")
                    ),
                )
            })
    }
}

impl fmt::Display for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names() {
        assert_eq!(
            Queue::parse("bloberrorresponses").unwrap(),
            Queue::BlobErrorResponses
        );
        let e = Queue::parse("errors").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownQueue);
        assert_eq!(
            e.message(),
            "unknown queue 'errors'; valid queues: syncrequests, blobrequests, syncresponses, blobresponses, errorresponses, bloberrorresponses"
        );
    }
}
