//! The issuehub 2.4 relation queues, which the other side of a connection
//! polls (hence the connection's JWT): one queue of one relation, its
//! entries counted (and their text kept where wanted) as they stream in.

use super::Call;
use crate::auth::Credentials;
use crate::error::{Error, ErrorKind, Redactor, Result};
use crate::http::encode_segment;
use crate::queue::{read_queue_redacted, KeepText, Queue, QueueSnapshot};
use crate::secret;
use std::sync::atomic::AtomicBool;

/// What to fetch of a queue, and how much of it to keep.
pub(crate) struct QueueRequest<'a> {
    /// The relation, sent as one percent-encoded path segment.
    pub(crate) relation: &'a str,
    /// Which of its six queues.
    pub(crate) queue: Queue,
    /// Whether the entries' text is kept (`queue.get`), or only while small.
    pub(crate) keep: KeepText,
    /// Set by a `queue.get` that joins this fetch while it runs: keep it all.
    pub(crate) keep_all: Option<&'a AtomicBool>,
    /// `max_response_bytes`.
    pub(crate) max: u64,
}

/// The queue's snapshot; a 401 on a renewable token (a minted one) gets one
/// fresh token and one more try.
pub(crate) fn fetch_queue(
    call: &Call<'_>,
    base_url: &str,
    credentials: &Credentials,
    request: &QueueRequest<'_>,
) -> Result<QueueSnapshot> {
    let url = format!(
        "{base_url}/rest/issuehub/2.4/relations/{}/{}",
        encode_segment(request.relation),
        request.queue.path()
    );
    let mut retried = false;
    loop {
        let (name, value) = credentials.header()?;
        let mut response = call
            .http
            .get(&url, (name, value.as_str()), call.remaining()?)?;
        let max = request.max;
        match response.status {
            200 => {
                if response.content_length.is_some_and(|n| n > max) {
                    return Err(Error::new(
                        ErrorKind::TooLarge,
                        format!("response larger than max_response_bytes ({max} bytes)"),
                    ));
                }
                // Redacted with the token this request sent, before the cut.
                let sent = credentials.known_secrets();
                let mut secrets = secret::texts(&sent);
                secrets.extend_from_slice(call.secrets);
                let redactor = Redactor::new(&secrets);
                return read_queue_redacted(
                    request.queue,
                    response.body,
                    max,
                    request.keep,
                    Some(&redactor),
                    request.keep_all,
                );
            }
            400 => {
                return Err(Error::new(
                    ErrorKind::RelationNotFound,
                    format!(
                        "relation not found on the node (HTTP 400: {})",
                        call.excerpt(&mut response.body)
                    ),
                ))
            }
            // The node may have restarted or its clock moved: one fresh token.
            401 if !retried && credentials.can_renew() => {
                credentials.forget_token(&value);
                retried = true;
            }
            403 => {
                return Err(Error::new(
                    ErrorKind::NotAuthenticated,
                    format!(
                        "not authenticated (HTTP 403): the node saw no credentials; check auth_header (sent: {name})"
                    ),
                ))
            }
            _ => {
                return Err(call.status_error(
                    &mut response,
                    (name, "url"),
                    &credentials.rejection_hint(),
                    ("no issuehub 2.4 API at url", "check url (its base path, e.g. /jira)"),
                ))
            }
        }
    }
}
