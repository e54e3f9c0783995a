//! A caught panic's payload as a message fit to show: one line, scrubbed of
//! secrets. Used wherever a panic is caught: the C boundary (`boundary`),
//! the item layer (`items`) and agent 2's request loop.

/// A panic's message on one line, scrubbed of `secrets` and of anything
/// JWT-shaped (a panic may format a value that holds a token).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send), secrets: &[&str]) -> String {
    let text = if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    };
    crate::error::Error::new(crate::ErrorKind::Internal, text)
        .redact(secrets)
        .message()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::catch_unwind;

    #[test]
    fn panic_messages_are_redacted() {
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJFWEFMQVRFIn0.c2lnbmF0dXJlLWJ5dGVz";
        let panic =
            catch_unwind(|| panic!("bad header {token} with secret hunter2-s3cret")).unwrap_err();
        let message = panic_message(&*panic, &["hunter2-s3cret"]);
        assert_eq!(message, "bad header *** with secret ***");
    }
}
