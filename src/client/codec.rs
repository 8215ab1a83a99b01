//! Request bodies the client writes and reply bodies it reads.
//!
//! Most bodies are [`crate::proto::Request`] encodings. Create and setData are written
//! here because the Java client sends a *null* buffer (length -1) for absent data and the
//! Java server keeps that null (zkCli then prints `null`); `proto::CreateRequest` has no
//! way to say null. Replies are read with the jute [`Reader`]; the records are those of
//! `zookeeper.jute` (GetDataResponse, Create2Response, MultiResponse, ...).

use super::{OpResult, ReadResult};
use crate::jute::{DecodeError, Reader, Record, Writer};
use crate::proto::{op, Acl, ClientInfo, ErrorCode, MultiHeader, Stat};
use bytes::{BufMut, Bytes, BytesMut};

/// Writes a CreateRequest / CreateTTLRequest body.
pub fn put_create(
    w: &mut BytesMut,
    path: &str,
    data: Option<&[u8]>,
    acl: &[Acl],
    flags: i32,
    ttl_ms: Option<i64>,
) {
    w.put_string(path);
    w.put_buffer_opt(data);
    w.put_vec(acl);
    w.put_i32(flags);
    if let Some(ttl) = ttl_ms {
        w.put_i64(ttl);
    }
}

/// Writes a SetDataRequest body.
pub fn put_set_data(w: &mut BytesMut, path: &str, data: Option<&[u8]>, version: i32) {
    w.put_string(path);
    w.put_buffer_opt(data);
    w.put_i32(version);
}

pub fn stat(body: Bytes) -> Result<Stat, DecodeError> {
    let mut r = Reader::new(body);
    Stat::decode(&mut r)
}

/// GetDataResponse: data (null stays `None`) and stat.
pub fn data_stat(body: Bytes) -> Result<(Option<Bytes>, Stat), DecodeError> {
    let mut r = Reader::new(body);
    let data = r.buffer_opt()?;
    let stat = Stat::decode(&mut r)?;
    Ok((data, stat))
}

pub fn string(body: Bytes) -> Result<String, DecodeError> {
    let mut r = Reader::new(body);
    Ok(r.string()?.as_str().to_string())
}

pub fn string_stat(body: Bytes) -> Result<(String, Stat), DecodeError> {
    let mut r = Reader::new(body);
    let s = r.string()?.as_str().to_string();
    let stat = Stat::decode(&mut r)?;
    Ok((s, stat))
}

pub fn strings(r: &mut Reader) -> Result<Vec<String>, DecodeError> {
    Ok(r.string_vec()?
        .into_iter()
        .map(|s| s.as_str().to_string())
        .collect())
}

pub fn children(body: Bytes) -> Result<Vec<String>, DecodeError> {
    strings(&mut Reader::new(body))
}

pub fn children_stat(body: Bytes) -> Result<(Vec<String>, Stat), DecodeError> {
    let mut r = Reader::new(body);
    let children = strings(&mut r)?;
    let stat = Stat::decode(&mut r)?;
    Ok((children, stat))
}

pub fn acl_stat(body: Bytes) -> Result<(Vec<Acl>, Stat), DecodeError> {
    let mut r = Reader::new(body);
    let acl = r.vec::<Acl>()?;
    let stat = Stat::decode(&mut r)?;
    Ok((acl, stat))
}

pub fn int(body: Bytes) -> Result<i32, DecodeError> {
    Reader::new(body).i32()
}

pub fn client_infos(body: Bytes) -> Result<Vec<ClientInfo>, DecodeError> {
    Reader::new(body).vec::<ClientInfo>()
}

/// A MultiResponse of a multi (write) request. Create results carry the server path;
/// the caller maps it back through the chroot.
pub fn multi_results(body: Bytes) -> Result<Vec<OpResult>, DecodeError> {
    let mut r = Reader::new(body);
    let mut results = Vec::new();
    loop {
        let h = MultiHeader::decode(&mut r)?;
        if h.done {
            return Ok(results);
        }
        results.push(match h.op {
            op::CREATE => OpResult::Create {
                path: r.string()?.as_str().to_string(),
                stat: None,
            },
            op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
                let path = r.string()?.as_str().to_string();
                OpResult::Create {
                    path,
                    stat: Some(Stat::decode(&mut r)?),
                }
            }
            op::DELETE => OpResult::Delete,
            op::SET_DATA => OpResult::SetData {
                stat: Stat::decode(&mut r)?,
            },
            op::CHECK => OpResult::Check,
            op::ERROR => OpResult::Error {
                code: ErrorCode::from_code(r.i32()?),
            },
            other => {
                return Err(DecodeError::InvalidValue {
                    field: "multi result type",
                    value: other as i64,
                })
            }
        });
    }
}

/// A MultiResponse of a multiRead request.
pub fn multi_read_results(body: Bytes) -> Result<Vec<ReadResult>, DecodeError> {
    let mut r = Reader::new(body);
    let mut results = Vec::new();
    loop {
        let h = MultiHeader::decode(&mut r)?;
        if h.done {
            return Ok(results);
        }
        results.push(match h.op {
            op::GET_CHILDREN => ReadResult::Children(strings(&mut r)?),
            op::GET_DATA => {
                let data = r.buffer_opt()?;
                ReadResult::Data {
                    data,
                    stat: Stat::decode(&mut r)?,
                }
            }
            op::ERROR => ReadResult::Error(ErrorCode::from_code(r.i32()?)),
            other => {
                return Err(DecodeError::InvalidValue {
                    field: "multiRead result type",
                    value: other as i64,
                })
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_data_is_sent_as_null() {
        let mut w = BytesMut::new();
        put_create(&mut w, "/a", None, &Acl::open_unsafe(), 0, None);
        // path "/a" (4 + 2 bytes), then the buffer length -1.
        assert_eq!(&w[6..10], &(-1i32).to_be_bytes());
        let mut w = BytesMut::new();
        put_create(&mut w, "/a", Some(b""), &Acl::open_unsafe(), 5, Some(9));
        assert_eq!(&w[6..10], &0i32.to_be_bytes());
        assert_eq!(&w[w.len() - 8..], &9i64.to_be_bytes());
    }

    #[test]
    fn multi_results_decode() {
        let mut w = BytesMut::new();
        MultiHeader {
            op: op::CREATE,
            done: false,
            err: 0,
        }
        .encode(&mut w);
        w.put_string("/x");
        MultiHeader {
            op: op::ERROR,
            done: false,
            err: -101,
        }
        .encode(&mut w);
        w.put_i32(-101);
        MultiHeader::END.encode(&mut w);
        let results = multi_results(w.freeze()).unwrap();
        assert_eq!(
            results,
            vec![
                OpResult::Create {
                    path: "/x".into(),
                    stat: None
                },
                OpResult::Error {
                    code: ErrorCode::NoNode
                }
            ]
        );
    }
}
