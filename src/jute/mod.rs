//! Jute, ZooKeeper's binary record encoding, and the length-prefixed frame around it.
//!
//! Owns: the primitive encodings (big-endian ints, length-prefixed buffers and strings,
//! vectors), the [`Record`] trait every wire type implements, and frame splitting.
//! Matches `org.apache.jute.BinaryInputArchive` / `BinaryOutputArchive`.
//!
//! Zero-copy: a [`Reader`] walks a frame held in [`Bytes`]; buffers and strings come out as
//! slices of that frame (`Bytes::slice`), never copied. Writers append straight into a
//! connection's `BytesMut` output buffer.
//!
//! Bounds: a single buffer or string inside a record may not exceed the frame it sits in (the
//! frame itself is bounded by `jute.maxbuffer` before it is ever allocated, see [`frame`]).
//! Malformed input is a [`DecodeError`], never a panic.

pub mod frame;

use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;

/// Why a record could not be decoded. Each is malformed input from a peer, never our bug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record ends early: needed {needed_bytes} more bytes at offset {offset}")]
    Truncated { offset: usize, needed_bytes: usize },
    #[error("negative length {len} at offset {offset}")]
    NegativeLength { offset: usize, len: i32 },
    #[error("null where a value is required at offset {offset}")]
    UnexpectedNull { offset: usize },
    #[error("invalid value {value} for {field}")]
    InvalidValue { field: &'static str, value: i64 },
    #[error("{trailing_bytes} unexpected bytes after the record")]
    TrailingBytes { trailing_bytes: usize },
}

/// An immutable UTF-8 string that is a slice of a received frame (no copy).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct JStr(Bytes);

impl JStr {
    /// Wraps bytes already known to be UTF-8.
    pub fn from_utf8(bytes: Bytes) -> Result<JStr, Bytes> {
        match std::str::from_utf8(&bytes) {
            Ok(_) => Ok(JStr(bytes)),
            Err(_) => Err(bytes),
        }
    }

    pub fn from_static(s: &'static str) -> JStr {
        JStr(Bytes::from_static(s.as_bytes()))
    }

    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor checks (or receives a `&str`/`String`, which is) valid
        // UTF-8, and `Bytes` is immutable, so the bytes stay valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for JStr {
    fn from(s: String) -> JStr {
        JStr(Bytes::from(s.into_bytes()))
    }
}

impl From<&str> for JStr {
    fn from(s: &str) -> JStr {
        JStr(Bytes::copy_from_slice(s.as_bytes()))
    }
}

// Hash as `str` does, so that `Borrow<str>` lookups in hash maps agree.
impl std::hash::Hash for JStr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl AsRef<str> for JStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for JStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl std::ops::Deref for JStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for JStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for JStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads jute primitives from the front of a frame.
pub struct Reader {
    buf: Bytes,
    offset: usize,
}

impl Reader {
    pub fn new(buf: Bytes) -> Reader {
        Reader { buf, offset: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.offset
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Fails unless the whole frame was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            trailing_bytes => Err(DecodeError::TrailingBytes { trailing_bytes }),
        }
    }

    fn take(&mut self, len: usize) -> Result<&[u8], DecodeError> {
        if self.remaining() < len {
            return Err(DecodeError::Truncated {
                offset: self.offset,
                needed_bytes: len - self.remaining(),
            });
        }
        let start = self.offset;
        self.offset += len;
        Ok(&self.buf[start..start + len])
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// Java's reader treats any non-zero byte as true.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.u8()? != 0)
    }

    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// A length-prefixed buffer; `None` for the null encoding (length -1).
    pub fn buffer_opt(&mut self) -> Result<Option<Bytes>, DecodeError> {
        let at = self.offset;
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(DecodeError::NegativeLength { offset: at, len });
        }
        let len = len as usize;
        if self.remaining() < len {
            return Err(DecodeError::Truncated {
                offset: self.offset,
                needed_bytes: len - self.remaining(),
            });
        }
        let slice = self.buf.slice(self.offset..self.offset + len);
        self.offset += len;
        Ok(Some(slice))
    }

    /// A buffer where null reads as empty (ZooKeeper stores null data as empty).
    pub fn buffer(&mut self) -> Result<Bytes, DecodeError> {
        Ok(self.buffer_opt()?.unwrap_or_default())
    }

    /// A string; invalid UTF-8 is replaced by U+FFFD as Java's decoder does (ZooKeeper
    /// then refuses such a path with BadArguments rather than failing to decode it).
    pub fn string_opt(&mut self) -> Result<Option<JStr>, DecodeError> {
        match self.buffer_opt()? {
            None => Ok(None),
            Some(bytes) => Ok(Some(JStr::from_utf8(bytes).unwrap_or_else(|bytes| {
                JStr::from(String::from_utf8_lossy(&bytes).into_owned())
            }))),
        }
    }

    /// A string where null reads as empty.
    pub fn string(&mut self) -> Result<JStr, DecodeError> {
        Ok(self.string_opt()?.unwrap_or_default())
    }

    /// A vector's element count; -1 (null) reads as 0. The count is checked against the
    /// bytes left so that a hostile count cannot make us reserve memory.
    pub fn vec_len(&mut self, min_element_bytes: usize) -> Result<usize, DecodeError> {
        let at = self.offset;
        let count = self.i32()?;
        if count == -1 {
            return Ok(0);
        }
        if count < 0 {
            return Err(DecodeError::NegativeLength {
                offset: at,
                len: count,
            });
        }
        let count = count as usize;
        if count.saturating_mul(min_element_bytes.max(1)) > self.remaining() {
            return Err(DecodeError::Truncated {
                offset: self.offset,
                needed_bytes: count * min_element_bytes.max(1) - self.remaining(),
            });
        }
        Ok(count)
    }

    pub fn vec<T: Record>(&mut self) -> Result<Vec<T>, DecodeError> {
        let count = self.vec_len(T::MIN_ENCODED_BYTES)?;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(T::decode(self)?);
        }
        Ok(out)
    }

    pub fn string_vec(&mut self) -> Result<Vec<JStr>, DecodeError> {
        let count = self.vec_len(4)?;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(self.string()?);
        }
        Ok(out)
    }
}

/// Writes jute primitives; implemented for `BytesMut` (and anything `BufMut`).
pub trait Writer: BufMut {
    fn put_bool(&mut self, v: bool) {
        self.put_u8(v as u8);
    }
    fn put_buffer(&mut self, data: &[u8]) {
        self.put_i32(data.len() as i32);
        self.put_slice(data);
    }
    fn put_buffer_opt(&mut self, data: Option<&[u8]>) {
        match data {
            Some(d) => self.put_buffer(d),
            None => self.put_i32(-1),
        }
    }
    fn put_string(&mut self, s: &str) {
        self.put_buffer(s.as_bytes());
    }
    fn put_vec<T: Record>(&mut self, items: &[T])
    where
        Self: Sized,
    {
        self.put_i32(items.len() as i32);
        for item in items {
            item.encode(self);
        }
    }
    fn put_string_vec<S: AsRef<str>>(&mut self, items: &[S]) {
        self.put_i32(items.len() as i32);
        for item in items {
            self.put_string(item.as_ref());
        }
    }
}

impl<B: BufMut> Writer for B {}

/// A jute record: fields in declaration order, no tags.
pub trait Record: Sized {
    /// The fewest bytes one encoded value can take (bounds vector counts before allocation).
    const MIN_ENCODED_BYTES: usize;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError>;
    fn encode<W: Writer>(&self, w: &mut W);

    /// Decodes a whole buffer, refusing trailing bytes.
    fn decode_all(buf: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let v = Self::decode(&mut r)?;
        r.finish()?;
        Ok(v)
    }

    fn to_bytes(&self) -> Bytes {
        let mut b = BytesMut::new();
        self.encode(&mut b);
        b.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_null_and_empty_are_distinct_on_the_wire() {
        let mut w = BytesMut::new();
        w.put_buffer_opt(None);
        w.put_buffer(b"");
        w.put_buffer(b"abc");
        let mut r = Reader::new(w.freeze());
        assert_eq!(r.buffer_opt().unwrap(), None);
        assert_eq!(r.buffer_opt().unwrap(), Some(Bytes::new()));
        assert_eq!(r.buffer().unwrap(), Bytes::from_static(b"abc"));
        r.finish().unwrap();
    }

    #[test]
    fn hostile_lengths_are_errors_not_allocations() {
        let mut w = BytesMut::new();
        w.put_i32(i32::MAX);
        let mut r = Reader::new(w.freeze());
        assert!(matches!(r.buffer(), Err(DecodeError::Truncated { .. })));
        let mut w = BytesMut::new();
        w.put_i32(-7);
        let mut r = Reader::new(w.freeze());
        assert!(matches!(
            r.buffer(),
            Err(DecodeError::NegativeLength { .. })
        ));
        let mut w = BytesMut::new();
        w.put_i32(1 << 30);
        let mut r = Reader::new(w.freeze());
        assert!(r.string_vec().is_err());
    }

    #[test]
    fn strings_are_slices_of_the_frame() {
        let mut w = BytesMut::new();
        w.put_string("/a/b");
        let frame = w.freeze();
        let base = frame.as_ptr() as usize;
        let mut r = Reader::new(frame);
        let s = r.string().unwrap();
        assert_eq!(s.as_str(), "/a/b");
        assert_eq!(s.as_bytes().as_ptr() as usize, base + 4);
    }

    #[test]
    fn invalid_utf8_is_replaced_as_java_does() {
        let mut w = BytesMut::new();
        w.put_buffer(&[b'/', 0xff, 0xfe]);
        let mut r = Reader::new(w.freeze());
        assert_eq!(r.string().unwrap().as_str(), "/\u{fffd}\u{fffd}");
    }
}
