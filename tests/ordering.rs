//! Per-session order (design.md guarantees 2 and 3) over a real socket: pipelined writes and
//! reads on one connection are answered in request order, and each read sees exactly the
//! writes sent before it.

mod common;
use common::{jute_string, RawClient, TestServer};

fn create_body(path: &str, data: &[u8]) -> Vec<u8> {
    let mut b = jute_string(path);
    b.extend_from_slice(&(data.len() as i32).to_be_bytes());
    b.extend_from_slice(data);
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&31i32.to_be_bytes());
    b.extend_from_slice(&jute_string("world"));
    b.extend_from_slice(&jute_string("anyone"));
    b.extend_from_slice(&0i32.to_be_bytes());
    b
}

fn set_body(path: &str, data: &[u8]) -> Vec<u8> {
    let mut b = jute_string(path);
    b.extend_from_slice(&(data.len() as i32).to_be_bytes());
    b.extend_from_slice(data);
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b
}

fn get_body(path: &str) -> Vec<u8> {
    let mut b = jute_string(path);
    b.push(0);
    b
}

fn frame(xid: i32, op: i32, body: &[u8]) -> Vec<u8> {
    let mut p = xid.to_be_bytes().to_vec();
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(body);
    p
}

#[test]
fn pipelined_reads_and_writes_answer_in_order_and_see_earlier_writes() {
    let server = TestServer::start("");
    let mut c = RawClient::connect(server.addr);
    c.handshake(0, 0, &[0; 16]).expect("handshake");
    // xid 1 create, then for each round: a set followed by several reads.
    let mut expected: Vec<(i32, Option<Vec<u8>>)> = Vec::new();
    let mut xid = 1;
    c.send_frame(&frame(xid, 1, &create_body("/o", b"v0")));
    expected.push((xid, None));
    for round in 1..=20 {
        for _ in 0..3 {
            xid += 1;
            c.send_frame(&frame(xid, 4, &get_body("/o")));
            expected.push((xid, Some(format!("v{}", round - 1).into_bytes())));
        }
        xid += 1;
        c.send_frame(&frame(
            xid,
            5,
            &set_body("/o", format!("v{round}").as_bytes()),
        ));
        expected.push((xid, None));
    }
    for (want_xid, want_data) in expected {
        let r = c.read_frame().expect("a reply");
        let got_xid = i32::from_be_bytes(r[0..4].try_into().unwrap());
        let err = i32::from_be_bytes(r[12..16].try_into().unwrap());
        assert_eq!((got_xid, err), (want_xid, 0), "replies in request order");
        if let Some(data) = want_data {
            let len = i32::from_be_bytes(r[16..20].try_into().unwrap()) as usize;
            assert_eq!(
                &r[20..20 + len],
                &data[..],
                "read of xid {got_xid} sees the writes before it"
            );
        }
    }
}
