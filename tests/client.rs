//! Corral's client library against a running server (`CORRAL_TEST_SERVER`,
//! `host:port`; without it each test starts its own Corral server): each op once, with
//! the results Apache ZooKeeper 3.8 gives. Each test works under its own root znode.

mod common;

use corral::client::{Client, ClientConfig, Error, Op, OpResult, ReadOp, ReadResult, WatchedEvent};
use corral::proto::{add_watch_mode, event, watcher_type, Acl, CreateMode, ErrorCode};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::target;

fn connect(server: &str) -> (Client, mpsc::Receiver<WatchedEvent>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let config = ClientConfig {
        watcher: Some(Arc::new(move |e: &WatchedEvent| {
            let _ = tx.lock().map(|t| t.send(e.clone()));
        })),
        ..ClientConfig::default()
    };
    let client = Client::connect(server, config).expect("connect string");
    assert!(
        client.wait_connected(Duration::from_secs(10)),
        "no connection"
    );
    (client, rx)
}

fn next_event(rx: &mpsc::Receiver<WatchedEvent>) -> WatchedEvent {
    loop {
        let e = rx.recv_timeout(Duration::from_secs(10)).expect("event");
        if e.event_type != event::NONE {
            return e;
        }
    }
}

fn root(client: &Client, test: &str) -> String {
    let path = format!("/corral-client-{test}-{}", std::process::id());
    remove_tree(client, &path);
    client
        .create(&path, None, &Acl::open_unsafe(), CreateMode::Persistent)
        .expect("create root");
    path
}

fn remove_tree(client: &Client, path: &str) {
    let Ok(children) = client.get_children(path, false) else {
        return;
    };
    for c in children {
        remove_tree(client, &format!("{path}/{c}"));
    }
    let _ = client.delete(path, -1);
}

#[test]
fn basic_ops_and_stats() {
    let target = target();
    let server = target.addr.clone();
    let (client, _events) = connect(&server);
    let root = root(&client, "basic");
    let open = Acl::open_unsafe();
    let a = format!("{root}/a");
    let (path, stat) = client
        .create2(&a, Some(b"v1"), &open, CreateMode::Persistent, None)
        .expect("create2");
    assert_eq!(path, a);
    assert_eq!((stat.version, stat.data_length), (0, 2));
    let err = client
        .create(&a, None, &open, CreateMode::Persistent)
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NodeExists));
    assert_eq!(
        err.to_string(),
        format!("KeeperErrorCode = NodeExists for {a}")
    );

    let stat = client.set_data(&a, Some(b"v2"), 0).expect("set");
    assert_eq!(stat.version, 1);
    assert_eq!(
        client.set_data(&a, Some(b"v3"), 0).unwrap_err().code(),
        Some(ErrorCode::BadVersion)
    );
    let (data, stat) = client.get_data(&a, false).expect("get");
    assert_eq!(data.as_deref(), Some(&b"v2"[..]));
    assert_eq!(stat.version, 1);
    assert!(client
        .exists(&format!("{root}/none"), false)
        .unwrap()
        .is_none());

    let seq = client
        .create(
            &format!("{root}/s-"),
            None,
            &open,
            CreateMode::PersistentSequential,
        )
        .expect("sequential");
    assert_eq!(seq, format!("{root}/s-0000000001"));
    let (mut children, stat) = client.get_children2(&root, false).expect("children");
    children.sort();
    assert_eq!(children, vec!["a".to_string(), "s-0000000001".to_string()]);
    assert_eq!(stat.num_children, 2);
    assert_eq!(client.get_all_children_number(&root).unwrap(), 2);

    let (acl, _) = client.get_acl(&a).expect("get acl");
    assert_eq!(acl, open);
    let stat = client
        .set_acl(&a, &Acl::read_unsafe(), -1)
        .expect("set acl");
    assert_eq!(stat.aversion, 1);
    assert_eq!(
        client.set_data(&a, None, -1).unwrap_err().code(),
        Some(ErrorCode::NoAuth)
    );
    assert_eq!(client.sync(&root).expect("sync"), root);
    assert!(client
        .who_am_i()
        .expect("whoami")
        .iter()
        .any(|c| c.auth_scheme.as_str() == "ip"));

    let eph = format!("{root}/e");
    client
        .create(&eph, None, &open, CreateMode::Ephemeral)
        .expect("ephemeral");
    assert_eq!(
        client.get_ephemerals(&root).expect("ephemerals"),
        vec![eph.clone()]
    );
    assert_eq!(
        client
            .create(&format!("{eph}/x"), None, &open, CreateMode::Persistent)
            .unwrap_err()
            .code(),
        Some(ErrorCode::NoChildrenForEphemerals)
    );
    client.delete(&eph, -1).expect("delete");
    assert!(matches!(
        client.create("bad", None, &open, CreateMode::Persistent),
        Err(Error::InvalidArgument(_))
    ));
    remove_tree(&client, &root);
    client.close().expect("close");
}

#[test]
fn multi_and_multi_read() {
    let target = target();
    let server = target.addr.clone();
    let (client, _events) = connect(&server);
    let root = root(&client, "multi");
    let open = Acl::open_unsafe();
    let x = format!("{root}/x");
    let results = client
        .multi(&[
            Op::Create {
                path: x.clone(),
                data: Some(b"1".to_vec()),
                acl: open.clone(),
                mode: CreateMode::Persistent,
                ttl_ms: None,
            },
            Op::SetData {
                path: x.clone(),
                data: Some(b"2".to_vec()),
                version: 0,
            },
            Op::Check {
                path: x.clone(),
                version: 1,
            },
        ])
        .expect("multi");
    assert!(matches!(&results[0], OpResult::Create { path, .. } if *path == x));
    assert!(matches!(results[1], OpResult::SetData { stat } if stat.version == 1));
    assert_eq!(results[2], OpResult::Check);

    let err = client
        .multi(&[
            Op::SetData {
                path: x.clone(),
                data: None,
                version: -1,
            },
            Op::Check {
                path: x.clone(),
                version: 5,
            },
            Op::Delete {
                path: format!("{root}/nope"),
                version: -1,
            },
        ])
        .unwrap_err();
    match err {
        Error::Multi { code, results, .. } => {
            assert_eq!(code, ErrorCode::BadVersion);
            assert_eq!(
                results,
                vec![
                    OpResult::Error {
                        code: ErrorCode::Ok
                    },
                    OpResult::Error {
                        code: ErrorCode::BadVersion
                    },
                    OpResult::Error {
                        code: ErrorCode::RuntimeInconsistency
                    },
                ]
            );
        }
        other => panic!("expected a multi error, got {other:?}"),
    }

    let results = client
        .multi_read(&[
            ReadOp::GetData(x.clone()),
            ReadOp::GetChildren(root.clone()),
            ReadOp::GetData(format!("{root}/nope")),
        ])
        .expect("multi read");
    assert!(matches!(&results[0], ReadResult::Data { data: Some(d), .. } if &d[..] == b"2"));
    assert_eq!(results[1], ReadResult::Children(vec!["x".to_string()]));
    assert_eq!(results[2], ReadResult::Error(ErrorCode::NoNode));
    remove_tree(&client, &root);
    client.close().expect("close");
}

#[test]
fn watches_fire_and_can_be_removed() {
    let target = target();
    let server = target.addr.clone();
    let (client, events) = connect(&server);
    let root = root(&client, "watch");
    let open = Acl::open_unsafe();
    let w = format!("{root}/w");
    assert!(client.exists(&w, true).unwrap().is_none());
    client
        .create(&w, None, &open, CreateMode::Persistent)
        .expect("create");
    let e = next_event(&events);
    assert_eq!(
        (e.event_type, e.path.as_deref()),
        (event::NODE_CREATED, Some(w.as_str()))
    );

    client.get_children(&w, true).expect("children");
    client
        .create(&format!("{w}/c"), None, &open, CreateMode::Persistent)
        .expect("child");
    let e = next_event(&events);
    assert_eq!(e.event_type, event::NODE_CHILDREN_CHANGED);

    client
        .add_watch(&w, add_watch_mode::PERSISTENT_RECURSIVE)
        .expect("add watch");
    client
        .set_data(&format!("{w}/c"), Some(b"x"), -1)
        .expect("set");
    let e = next_event(&events);
    assert_eq!(e.event_type, event::NODE_DATA_CHANGED);
    assert_eq!(e.path, Some(format!("{w}/c")));
    client
        .remove_watches(&w, watcher_type::ANY, false)
        .expect("remove");
    let e = next_event(&events);
    assert_eq!(e.event_type, event::PERSISTENT_WATCH_REMOVED);
    assert_eq!(
        client
            .remove_watches(&w, watcher_type::ANY, false)
            .unwrap_err()
            .code(),
        Some(ErrorCode::NoWatcher)
    );
    remove_tree(&client, &root);
    client.close().expect("close");
}

#[test]
fn chroot_maps_paths_both_ways() {
    let target = target();
    let server = target.addr.clone();
    let (plain, _) = connect(&server);
    let root = root(&plain, "chroot");
    let (client, events) = connect(&format!("{server}{root}"));
    let open = Acl::open_unsafe();
    assert_eq!(
        client
            .create("/n", Some(b"d"), &open, CreateMode::Persistent)
            .expect("create"),
        "/n"
    );
    client.get_data("/n", true).expect("get");
    plain
        .set_data(&format!("{root}/n"), Some(b"e"), -1)
        .expect("set");
    let e = next_event(&events);
    assert_eq!(e.path.as_deref(), Some("/n"));
    assert_eq!(
        client.get_children("/", false).unwrap(),
        vec!["n".to_string()]
    );
    client.close().expect("close");
    remove_tree(&plain, &root);
    plain.close().expect("close");
}
