//! A stand-in server that answers at once, for measuring the load generator itself
//! (`corral bench --stub`): if the bench drives the stub far faster than a real server,
//! the real server's numbers are the server's, not the client's.
//!
//! It speaks just enough of the protocol for the bench: the handshake, then a fixed
//! answer per op code (getData returns `value_bytes` of zeros, setData and exists a Stat,
//! create echoes the path (with a ten-digit counter appended for sequential modes), a
//! multi of setData a Stat per op, everything else a bare header). It keeps no tree and
//! no watches. Loopback
//! only; one thread per connection, each ending when its client hangs up or the stub is
//! dropped (reads wait at most [`READ_POLL`] between checks of the stop flag).

use super::wire::REPLY_BYTES_MAX;
use crate::jute::frame::{begin_frame, end_frame, split_frame, FrameStatus};
use crate::jute::{Reader, Record, Writer};
use crate::proto::{op, ConnectRequest, MultiHeader, ReplyHeader, RequestHeader, Stat};
use bytes::{BufMut, Bytes, BytesMut};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const READ_POLL: Duration = Duration::from_millis(100);

pub struct Stub {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Stub {
    /// Listens on an ephemeral loopback port.
    pub fn start(value_bytes: usize) -> std::io::Result<Stub> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut get_data_body = BytesMut::new();
        get_data_body.put_buffer(&vec![0u8; value_bytes]);
        Stat {
            data_length: value_bytes as i32,
            ..Stat::default()
        }
        .encode(&mut get_data_body);
        let get_data_body = get_data_body.freeze();
        let stop_accept = stop.clone();
        let accept = std::thread::Builder::new()
            .name("bench-stub".into())
            .spawn(move || {
                let next_session = AtomicI64::new(1);
                for stream in listener.incoming() {
                    if stop_accept.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let session_id = next_session.fetch_add(1, Ordering::Relaxed);
                    let body = get_data_body.clone();
                    let stop = stop_accept.clone();
                    let _ = std::thread::Builder::new()
                        .name("bench-stub-conn".into())
                        .spawn(move || serve(stream, session_id, body, stop));
                }
            })?;
        Ok(Stub {
            addr,
            stop,
            accept: Some(accept),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn serve(mut stream: TcpStream, session_id: i64, get_data_body: Bytes, stop: Arc<AtomicBool>) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(READ_POLL));
    let mut input = BytesMut::with_capacity(64 * 1024);
    let mut scratch = vec![0u8; 64 * 1024];
    let mut out = BytesMut::with_capacity(256 * 1024);
    let mut handshaken = false;
    let mut zxid: i64 = 0;
    let mut closing = false;
    let mut sequence: u64 = 0;
    while !stop.load(Ordering::Relaxed) && !closing {
        match stream.read(&mut scratch) {
            Ok(0) => return,
            Ok(n) => input.extend_from_slice(&scratch[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(_) => return,
        }
        loop {
            let frame = match split_frame(&mut input, REPLY_BYTES_MAX) {
                FrameStatus::Frame(f) => f,
                FrameStatus::Incomplete { .. } => break,
                FrameStatus::BadLength { .. } => return,
            };
            if !handshaken {
                if ConnectRequest::decode_all(frame).is_err() {
                    return;
                }
                handshaken = true;
                let at = begin_frame(&mut out);
                out.put_i32(0);
                out.put_i32(30_000);
                out.put_i64(session_id);
                out.put_buffer(&[0; 16]);
                out.put_bool(false);
                end_frame(&mut out, at);
                continue;
            }
            let mut r = Reader::new(frame);
            let Ok(hdr) = RequestHeader::decode(&mut r) else {
                return;
            };
            let is_write = matches!(
                hdr.op,
                op::CREATE | op::SET_DATA | op::DELETE | op::CLOSE_SESSION | op::MULTI
            );
            if is_write {
                zxid += 1;
            }
            let at = begin_frame(&mut out);
            ReplyHeader {
                xid: hdr.xid,
                zxid,
                err: 0,
            }
            .encode(&mut out);
            match hdr.op {
                op::GET_DATA => out.extend_from_slice(&get_data_body),
                op::SET_DATA | op::EXISTS => Stat::default().encode(&mut out),
                op::CREATE => {
                    let Ok(path) = r.string() else { return };
                    // Skip data and ACLs to the flags.
                    if r.buffer_opt().is_err() {
                        return;
                    }
                    let Ok(acls) = r.vec::<crate::proto::Acl>() else {
                        return;
                    };
                    drop(acls);
                    let Ok(flags) = r.i32() else { return };
                    if flags & 2 != 0 {
                        out.put_string(&format!("{}{sequence:010}", path.as_str()));
                        sequence += 1;
                    } else {
                        out.put_string(&path);
                    }
                }
                op::MULTI if !multi_reply(&mut r, &mut out) => return,
                op::GET_CHILDREN => out.put_i32(0),
                op::CLOSE_SESSION => closing = true,
                _ => {}
            }
            end_frame(&mut out, at);
        }
        if stream.write_all(&out).is_err() {
            return;
        }
        out.clear();
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// Answers a multi of setData ops (a Stat each); false on anything else.
fn multi_reply(r: &mut Reader, out: &mut BytesMut) -> bool {
    for _ in 0..=super::MULTI_OPS_MAX {
        let Ok(h) = MultiHeader::decode(r) else {
            return false;
        };
        if h.done {
            MultiHeader::END.encode(out);
            return true;
        }
        if h.op != op::SET_DATA
            || r.string().is_err()
            || r.buffer_opt().is_err()
            || r.i32().is_err()
        {
            return false;
        }
        MultiHeader {
            op: op::SET_DATA,
            done: false,
            err: 0,
        }
        .encode(out);
        Stat::default().encode(out);
    }
    false
}
