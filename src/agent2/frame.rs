//! Agent 2's plugin framing: a u32 little-endian payload type (only 1, JSON,
//! exists), a u32 little-endian length, then that many bytes of JSON. No
//! magic, no padding; both directions alike.

use std::io::{self, Read};

/// The only payload type of the protocol.
pub(crate) const JSON: u32 = 1;
/// Type and length, 4 bytes each.
pub(crate) const HEADER_LEN: usize = 8;
/// Incoming frames larger than this are skipped unread: the agent's requests
/// (a key and its parameters, the plugin's options) are small, and a huge
/// length must not make the plugin allocate it.
pub const MAX_INCOMING: u32 = 1 << 20;

/// One frame as read from the agent.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A JSON message's bytes.
    Json(Vec<u8>),
    /// A frame of another type, or over [`MAX_INCOMING`]: its body was read
    /// and dropped, so the stream stays in step.
    Skipped {
        /// The frame's payload type.
        kind: u32,
        /// The frame's length.
        len: u32,
    },
}

/// The next frame, or `None` at a clean end of stream (between frames).
/// Short reads are fine; an end of stream inside a frame is an error.
pub fn read(reader: &mut impl Read) -> io::Result<Option<Frame>> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match reader.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let kind = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    let len = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if kind != JSON || len > MAX_INCOMING {
        let skipped = io::copy(&mut reader.take(u64::from(len)), &mut io::sink())?;
        if skipped < u64::from(len) {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        return Ok(Some(Frame::Skipped { kind, len }));
    }
    let mut body = vec![0u8; len as usize];
    reader.read_exact(&mut body)?;
    Ok(Some(Frame::Json(body)))
}

/// `message` as one frame, serialised straight after its header (an answer
/// can be megabytes: no second copy), so the writer sends it with one write.
pub fn encode(message: &impl serde::Serialize) -> Vec<u8> {
    let mut frame = vec![0; HEADER_LEN];
    serde_json::to_writer(&mut frame, message).expect("JSON values serialize");
    let len = (frame.len() - HEADER_LEN) as u32;
    frame[..4].copy_from_slice(&JSON.to_le_bytes());
    frame[4..HEADER_LEN].copy_from_slice(&len.to_le_bytes());
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of any bytes, JSON or not.
    fn raw(body: &[u8]) -> Vec<u8> {
        let mut frame = JSON.to_le_bytes().to_vec();
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(body);
        frame
    }

    /// Hands out at most `step` bytes per read, like a socket under load.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn round_trip_through_one_byte_reads() {
        let mut stream = raw(br#"{"id":1,"type":2,"version":"6.0.13"}"#);
        stream.extend(raw(b"{}"));
        let mut reader = Trickle {
            data: &stream,
            step: 1,
        };
        assert_eq!(
            read(&mut reader).unwrap(),
            Some(Frame::Json(
                br#"{"id":1,"type":2,"version":"6.0.13"}"#.to_vec()
            ))
        );
        assert_eq!(
            read(&mut reader).unwrap(),
            Some(Frame::Json(b"{}".to_vec()))
        );
        assert_eq!(read(&mut reader).unwrap(), None);
    }

    #[test]
    fn header_is_little_endian_type_then_length() {
        let message = serde_json::json!({});
        assert_eq!(encode(&message), [1, 0, 0, 0, 2, 0, 0, 0, b'{', b'}']);
    }

    #[test]
    fn large_frames_up_to_the_limit_are_read_whole() {
        let body = vec![b' '; MAX_INCOMING as usize];
        let stream = raw(&body);
        let mut reader = Trickle {
            data: &stream,
            step: 4096,
        };
        assert_eq!(read(&mut reader).unwrap(), Some(Frame::Json(body)));
    }

    #[test]
    fn oversized_and_foreign_frames_are_skipped_in_step() {
        let mut stream = raw(&vec![b' '; MAX_INCOMING as usize + 1]);
        stream.extend_from_slice(&7u32.to_le_bytes());
        stream.extend_from_slice(&3u32.to_le_bytes());
        stream.extend_from_slice(b"abc");
        stream.extend(raw(b"{}"));
        let mut reader = stream.as_slice();
        assert_eq!(
            read(&mut reader).unwrap(),
            Some(Frame::Skipped {
                kind: JSON,
                len: MAX_INCOMING + 1
            })
        );
        assert_eq!(
            read(&mut reader).unwrap(),
            Some(Frame::Skipped { kind: 7, len: 3 })
        );
        assert_eq!(
            read(&mut reader).unwrap(),
            Some(Frame::Json(b"{}".to_vec()))
        );
    }

    #[test]
    fn garbage_header_with_a_huge_length_does_not_allocate_it() {
        // "ZBXD\x01..." (the server protocol) read as a header: type and a
        // length of gigabytes; the stream ends long before.
        let mut stream = b"ZBXD\x01\xff\xff\xff".to_vec();
        stream.extend_from_slice(b"short");
        let err = read(&mut stream.as_slice()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn end_of_stream_inside_a_frame_is_an_error() {
        let stream = raw(b"{\"id\":1}");
        for cut in [3, HEADER_LEN, HEADER_LEN + 2] {
            let err = read(&mut &stream[..cut]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "cut at {cut}");
        }
    }
}
