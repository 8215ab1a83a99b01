//! Length-prefixed framing: a 4-byte big-endian signed length, then that many bytes.
//!
//! [`split_frame`] looks at a connection's input buffer: a whole frame is split off as
//! `Bytes` (the buffer's memory, no copy); a partial one asks for more input; a length
//! outside `0..=max_frame_bytes` is an error before anything is allocated for it, which the
//! caller turns into a closed connection and a log line (ZooKeeper: "Len error").

use bytes::{Buf, Bytes, BytesMut};

/// What the input buffer holds right now.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameStatus {
    /// A complete frame's payload (length prefix removed).
    Frame(Bytes),
    /// Not enough bytes yet; at least this many more are needed.
    Incomplete { needed_bytes: usize },
    /// The length prefix is negative or above the limit.
    BadLength { len: i32 },
}

/// Reads the 4-byte length prefix without consuming it.
pub fn peek_len(buf: &[u8]) -> Option<i32> {
    if buf.len() < 4 {
        return None;
    }
    Some(i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]))
}

/// Splits one frame off the front of `buf` if it is complete.
pub fn split_frame(buf: &mut BytesMut, max_frame_bytes: usize) -> FrameStatus {
    let Some(len) = peek_len(buf) else {
        return FrameStatus::Incomplete {
            needed_bytes: 4 - buf.len(),
        };
    };
    if len < 0 || len as usize > max_frame_bytes {
        return FrameStatus::BadLength { len };
    }
    let total = 4 + len as usize;
    if buf.len() < total {
        return FrameStatus::Incomplete {
            needed_bytes: total - buf.len(),
        };
    }
    buf.advance(4);
    FrameStatus::Frame(buf.split_to(len as usize).freeze())
}

/// Starts a frame in `out`: reserves the length prefix and returns where it sits, so the
/// record can be encoded straight into the output buffer and the length patched after.
pub fn begin_frame(out: &mut BytesMut) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    at
}

/// Patches the length prefix written by [`begin_frame`].
pub fn end_frame(out: &mut BytesMut, at: usize) {
    let len = (out.len() - at - 4) as i32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_whole_frames_and_waits_for_partial_ones() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0, 0, 0, 3, b'a', b'b']);
        assert_eq!(
            split_frame(&mut buf, 100),
            FrameStatus::Incomplete { needed_bytes: 1 }
        );
        buf.extend_from_slice(b"c\x00\x00");
        assert_eq!(
            split_frame(&mut buf, 100),
            FrameStatus::Frame(Bytes::from_static(b"abc"))
        );
        assert_eq!(
            split_frame(&mut buf, 100),
            FrameStatus::Incomplete { needed_bytes: 2 }
        );
    }

    #[test]
    fn oversized_and_negative_lengths_are_refused() {
        let mut buf = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff][..]);
        assert_eq!(
            split_frame(&mut buf, 1024),
            FrameStatus::BadLength { len: i32::MAX }
        );
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xfe][..]);
        assert_eq!(
            split_frame(&mut buf, 1024),
            FrameStatus::BadLength { len: -2 }
        );
    }

    #[test]
    fn begin_end_frame_patches_length() {
        let mut out = BytesMut::new();
        let at = begin_frame(&mut out);
        out.extend_from_slice(b"hello");
        end_frame(&mut out, at);
        assert_eq!(&out[..], b"\x00\x00\x00\x05hello");
    }
}
