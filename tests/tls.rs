//! TLS on `secureClientPort` against a real `corral server`: client certificates checked
//! against the trust store become `x509` identities that ACLs match, clients without a valid
//! certificate are refused with one log line, bad store files stop the server at startup.
//!
//! Certificates are made at run time with the `openssl` command (test-only keys in a
//! temporary directory); the tests are skipped, with a message, where it is missing. The
//! same behaviour against Apache ZooKeeper 3.8 and with real clients (kazoo, the Java
//! client) is checked by tests/tls/run.sh.

mod common;

use common::TestServer;
use corral::tls::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The subject of the client certificate, as ZooKeeper prints it (RFC 2253, last RDN first).
const CLIENT_DN: &str = "CN=client one,OU=ops,O=Corral,C=US";

/// A CA, a server certificate for 127.0.0.1, a client certificate, and an intruder's
/// certificate from another CA; all in a temporary directory removed on drop.
pub struct Pki {
    pub dir: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    /// None (and a message) where the `openssl` command is missing.
    pub fn create(tag: &str) -> Option<Pki> {
        if Command::new("openssl").arg("version").output().is_err() {
            eprintln!("skipped: no openssl command to make test certificates");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("corral-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("pki dir");
        let pki = Pki { dir };
        pki.ca("ca", "/O=Corral Test/CN=Test CA");
        pki.ca("other-ca", "/CN=Other CA");
        pki.leaf("server", "ca", "/CN=server", "IP:127.0.0.1,DNS:localhost");
        pki.leaf(
            "client",
            "ca",
            "/C=US/O=Corral/OU=ops/CN=client one",
            "DNS:client",
        );
        pki.leaf("intruder", "other-ca", "/CN=intruder", "DNS:intruder");
        pki.leaf("admin", "ca", "/O=Corral/CN=admin", "DNS:admin");
        Some(pki)
    }

    fn ca(&self, name: &str, subject: &str) {
        let key = format!("{name}.key");
        let pem = format!("{name}.pem");
        openssl(
            &self.dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &pem,
                "-days",
                "2",
                "-subj",
                subject,
            ],
        );
    }

    /// `name.key`, `name.crt` and `name.pem` (key and certificate: a PEM key store).
    fn leaf(&self, name: &str, ca: &str, subject: &str, san: &str) {
        let (key, csr, crt, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        std::fs::write(
            self.dir.join(&ext),
            format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\n"),
        )
        .expect("ext file");
        openssl(
            &self.dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                subject,
            ],
        );
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
        let mut store = std::fs::read(self.dir.join(&key)).expect("key");
        store.extend(std::fs::read(self.dir.join(&crt)).expect("crt"));
        std::fs::write(self.dir.join(format!("{name}.pem")), store).expect("key store");
    }

    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    /// zoo.cfg lines for a secure client port on `port`.
    fn server_lines(&self, port: u16, client_auth: &str) -> String {
        format!(
            "secureClientPort={port}\nsecureClientPortAddress=127.0.0.1\n\
             ssl.keyStore.location={}\nssl.keyStore.type=PEM\n\
             ssl.trustStore.location={}\nssl.trustStore.type=PEM\nssl.clientAuth={client_auth}\n",
            self.path("server.pem"),
            self.path("ca.pem"),
        )
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection to `addr` trusting `ca.pem`, presenting `identity` (a key store file).
fn tls_connect(pki: &Pki, addr: SocketAddr, identity: Option<&str>) -> Tls {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(pki.path("ca.pem")).expect("ca.pem") {
        roots.add(cert.expect("ca cert")).expect("add ca");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_root_certificates(roots);
    let config = match identity {
        Some(file) => {
            let certs = CertificateDer::pem_file_iter(pki.path(file))
                .expect("key store")
                .collect::<Result<Vec<_>, _>>()
                .expect("certs");
            let key = PrivateKeyDer::from_pem_file(pki.path(file)).expect("key");
            builder
                .with_client_auth_cert(certs, key)
                .expect("client cert")
        }
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client connection");
    let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    rustls::StreamOwned::new(conn, sock)
}

// --- Just enough of the client protocol ----------------------------------------------------

fn put_int(b: &mut Vec<u8>, v: i32) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    put_int(b, s.len() as i32);
    b.extend_from_slice(s.as_bytes());
}

fn send_frame(s: &mut impl Write, payload: &[u8]) -> std::io::Result<()> {
    let mut frame = (payload.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(payload);
    s.write_all(&frame)?;
    s.flush()
}

fn read_frame(s: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = i32::from_be_bytes(len);
    if !(0..=1 << 20).contains(&len) {
        return Err(std::io::Error::other(format!("bad frame length {len}")));
    }
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body)?;
    Ok(body)
}

/// Opens a session; Err when the server refuses or closes the connection.
fn open_session(s: &mut (impl Read + Write)) -> std::io::Result<()> {
    let mut req = Vec::new();
    put_int(&mut req, 0); // protocolVersion
    req.extend_from_slice(&0i64.to_be_bytes()); // lastZxidSeen
    put_int(&mut req, 30_000); // timeOut
    req.extend_from_slice(&0i64.to_be_bytes()); // sessionId
    put_int(&mut req, 16);
    req.extend_from_slice(&[0u8; 16]); // passwd
    req.push(0); // readOnly
    send_frame(s, &req)?;
    let reply = read_frame(s)?;
    if reply.len() < 16 {
        return Err(std::io::Error::other("short connect reply"));
    }
    Ok(())
}

/// Sends one request, returns the reply's error code and body.
fn call(s: &mut (impl Read + Write), xid: i32, op: i32, body: &[u8]) -> (i32, Vec<u8>) {
    let mut req = Vec::new();
    put_int(&mut req, xid);
    put_int(&mut req, op);
    req.extend_from_slice(body);
    send_frame(s, &req).expect("send request");
    let reply = read_frame(s).expect("reply");
    let err = i32::from_be_bytes(reply[12..16].try_into().expect("err"));
    (err, reply[16..].to_vec())
}

fn get_str(b: &[u8], at: &mut usize) -> String {
    let len = i32::from_be_bytes(b[*at..*at + 4].try_into().expect("len")) as usize;
    *at += 4;
    let s = String::from_utf8_lossy(&b[*at..*at + len]).into_owned();
    *at += len;
    s
}

/// whoAmI (op 107): the session's (scheme, id) pairs.
fn who_am_i(s: &mut (impl Read + Write)) -> Vec<(String, String)> {
    let (err, body) = call(s, 1, 107, &[]);
    assert_eq!(err, 0, "whoAmI");
    let n = i32::from_be_bytes(body[0..4].try_into().expect("count"));
    let mut at = 4;
    (0..n)
        .map(|_| (get_str(&body, &mut at), get_str(&body, &mut at)))
        .collect()
}

/// create (op 1) of `path` readable and writable only by `x509:<dn>`; the error code.
fn create_x509_only(s: &mut (impl Read + Write), path: &str, dn: &str) -> i32 {
    let mut body = Vec::new();
    put_str(&mut body, path);
    put_int(&mut body, 2);
    body.extend_from_slice(b"hi");
    put_int(&mut body, 1); // one ACL
    put_int(&mut body, 31); // ALL
    put_str(&mut body, "x509");
    put_str(&mut body, dn);
    put_int(&mut body, 0); // persistent
    call(s, 2, 1, &body).0
}

/// getData (op 4) of `path`; the error code.
fn get_data(s: &mut (impl Read + Write), path: &str) -> i32 {
    let mut body = Vec::new();
    put_str(&mut body, path);
    body.push(0);
    call(s, 3, 4, &body).0
}

/// Waits (bounded) until the server log has `count` lines containing `needle`.
fn wait_for_log(server: &TestServer, needle: &str, count: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.log();
        if log.matches(needle).count() >= count || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn client_certificate_is_an_x509_identity_that_acls_match() {
    let Some(pki) = Pki::create("x509") else {
        return;
    };
    let port = free_port();
    let server = TestServer::start(&pki.server_lines(port, "need"));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");

    let mut tls = tls_connect(&pki, addr, Some("client.pem"));
    open_session(&mut tls).expect("a session over TLS");
    let ids = who_am_i(&mut tls);
    assert_eq!(
        ids,
        vec![
            ("x509".to_string(), CLIENT_DN.to_string()),
            ("ip".to_string(), "127.0.0.1".to_string()),
        ]
    );
    assert_eq!(create_x509_only(&mut tls, "/tls-only", CLIENT_DN), 0);
    assert_eq!(get_data(&mut tls, "/tls-only"), 0, "the x509 id reads");

    // The plain port is unchanged, and has no x509 id: NoAuth (-102).
    let mut plain = TcpStream::connect(server.addr).expect("plain connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    open_session(&mut plain).expect("a plain session");
    assert_eq!(get_data(&mut plain, "/tls-only"), -102);
    assert_eq!(who_am_i(&mut plain).len(), 1);
    // Four-letter words work on the secure port too.
    let mut tls = tls_connect(&pki, addr, Some("client.pem"));
    tls.write_all(b"ruok").expect("ruok");
    let mut answer = String::new();
    let _ = tls.read_to_string(&mut answer);
    assert_eq!(answer, "imok");
}

#[test]
fn clients_without_a_trusted_certificate_are_refused_with_a_log_line() {
    let Some(pki) = Pki::create("refuse") else {
        return;
    };
    let port = free_port();
    // One connection per address: refused handshakes must give their place back.
    let lines = format!("{}maxClientCnxns=1\n", pki.server_lines(port, "need"));
    let server = TestServer::start(&lines);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let needle = "TLS handshake with a client failed";

    // Each refusal is awaited in the log before the next connection: the client hears of
    // it before the server has given the connection's place back.
    let mut none = tls_connect(&pki, addr, None);
    assert!(open_session(&mut none).is_err(), "no certificate");
    wait_for_log(&server, needle, 1);
    let mut intruder = tls_connect(&pki, addr, Some("intruder.pem"));
    assert!(
        open_session(&mut intruder).is_err(),
        "another CA's certificate"
    );
    wait_for_log(&server, needle, 2);
    // Plain ZooKeeper protocol on the secure port.
    let mut plain = TcpStream::connect(addr).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert!(
        open_session(&mut plain).is_err(),
        "plaintext on the TLS port"
    );

    let log = wait_for_log(&server, needle, 3);
    assert_eq!(log.matches(needle).count(), 3, "{log}");
    assert!(!log.contains("panicked"), "{log}");
    // Still serving; maxClientCnxns counts TLS connections.
    let mut ok = tls_connect(&pki, addr, Some("client.pem"));
    open_session(&mut ok).expect("a trusted client after the refusals");
    let mut second = tls_connect(&pki, addr, Some("client.pem"));
    assert!(open_session(&mut second).is_err(), "over maxClientCnxns");
    let log = wait_for_log(&server, "Too many connections from /127.0.0.1", 1);
    assert!(
        log.contains("Too many connections from /127.0.0.1 - max is 1"),
        "{log}"
    );
}

#[test]
fn client_auth_want_serves_clients_without_a_certificate() {
    let Some(pki) = Pki::create("want") else {
        return;
    };
    let port = free_port();
    let _server = TestServer::start(&pki.server_lines(port, "want"));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut anonymous = tls_connect(&pki, addr, None);
    open_session(&mut anonymous).expect("a session without a certificate");
    assert_eq!(
        who_am_i(&mut anonymous),
        vec![("ip".to_string(), "127.0.0.1".to_string())]
    );
    let mut known = tls_connect(&pki, addr, Some("client.pem"));
    open_session(&mut known).expect("a session with a certificate");
    assert_eq!(who_am_i(&mut known)[0].1, CLIENT_DN);
}

#[test]
fn the_x509_super_user_reads_what_nobody_else_may() {
    let Some(pki) = Pki::create("super") else {
        return;
    };
    let port = free_port();
    let lines = format!(
        "{}X509AuthenticationProvider.superUser=CN=admin,O=Corral\n",
        pki.server_lines(port, "need")
    );
    let _server = TestServer::start(&lines);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut client = tls_connect(&pki, addr, Some("client.pem"));
    open_session(&mut client).expect("client session");
    assert_eq!(create_x509_only(&mut client, "/client-only", CLIENT_DN), 0);
    assert_eq!(
        who_am_i(&mut client)[0].0,
        "x509",
        "the client is no super user"
    );

    let mut admin = tls_connect(&pki, addr, Some("admin.pem"));
    open_session(&mut admin).expect("admin session");
    let ids = who_am_i(&mut admin);
    assert_eq!(
        ids[..2],
        [
            ("x509".to_string(), "CN=admin,O=Corral".to_string()),
            ("super".to_string(), String::new()),
        ]
    );
    assert_eq!(get_data(&mut admin, "/client-only"), 0, "super reads it");
}

/// Kills the child (by its handle) when dropped.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_server_with_only_a_secure_client_port_serves_over_tls() {
    let Some(pki) = Pki::create("only") else {
        return;
    };
    let port = free_port();
    let cfg = pki.dir.join("only.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nadmin.enableServer=false\n4lw.commands.whitelist=*\n{}",
            pki.dir.join("data").display(),
            pki.server_lines(port, "need")
        ),
    )
    .expect("cfg");
    let child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("server")
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut child = Reap(child);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(matches!(child.0.try_wait(), Ok(None)), "the server exited");
        if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "no secure port within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut tls = tls_connect(&pki, addr, Some("client.pem"));
    open_session(&mut tls).expect("a session on the only port");
    assert_eq!(who_am_i(&mut tls)[0].1, CLIENT_DN);
}

#[test]
fn bad_store_files_stop_the_server_with_one_line_naming_the_file() {
    let Some(pki) = Pki::create("bad") else {
        return;
    };
    std::fs::write(pki.dir.join("junk.pem"), "no PEM here\n").expect("junk");
    for (store, file) in [
        ("ssl.keyStore.location", "junk.pem"),
        ("ssl.keyStore.location", "missing.pem"),
        ("ssl.trustStore.location", "junk.pem"),
    ] {
        let other = if store == "ssl.keyStore.location" {
            format!("ssl.trustStore.location={}", pki.path("ca.pem"))
        } else {
            format!("ssl.keyStore.location={}", pki.path("server.pem"))
        };
        let cfg = pki.dir.join("bad.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={}\nsecureClientPort={}\n{store}={}\n{other}\n",
                pki.dir.join("data").display(),
                free_port(),
                free_port(),
                pki.path(file)
            ),
        )
        .expect("cfg");
        let mut child = Command::new(env!("CARGO_BIN_EXE_corral"))
            .arg("server")
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{store}={file}: the server did not stop");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut stderr)
            .expect("read stderr");
        assert!(!status.success(), "{store}={file}");
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(file)).collect();
        assert_eq!(lines.len(), 1, "{store}={file}: {stderr}");
        assert!(lines[0].contains(store), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

// --- sslQuorum: the mesh over mutual TLS ------------------------------------------------

use common::cluster::TestCluster;

const CLUSTER_SETTLE_S: u64 = 40;

/// zoo.cfg lines for a quorum member presenting `key_store` and trusting `ca.pem`.
fn quorum_lines(pki: &Pki, key_store: &str) -> String {
    format!(
        "sslQuorum=true\nssl.quorum.keyStore.location={}\nssl.quorum.keyStore.type=PEM\n\
         ssl.quorum.trustStore.location={}\nssl.quorum.trustStore.type=PEM\n",
        pki.path(key_store),
        pki.path("ca.pem")
    )
}

fn append_config(cluster: &TestCluster, n: usize, lines: &str) {
    let path = cluster.config_path(n);
    let mut text = std::fs::read_to_string(&path).expect("read zooN.cfg");
    text.push_str(lines);
    std::fs::write(&path, text).expect("write zooN.cfg");
}

#[test]
fn a_tls_quorum_forms_and_refuses_a_peer_from_another_ca() {
    if common::cluster::Flavor::from_env() != common::cluster::Flavor::Corral {
        return; // ZooKeeper's quorum TLS runs on its own ports: not this test's subject.
    }
    let Some(pki) = Pki::create("quorum") else {
        return;
    };
    let mut cluster = TestCluster::configure(4, 0);
    for n in 1..=3 {
        append_config(&cluster, n, &quorum_lines(&pki, "server.pem"));
    }
    // Server 4 trusts the cluster's CA but shows a certificate from another one.
    append_config(&cluster, 4, &quorum_lines(&pki, "intruder.pem"));
    for n in 1..=3 {
        cluster.start_node(n);
    }
    let deadline = Instant::now() + Duration::from_secs(CLUSTER_SETTLE_S);
    let modes = cluster.wait_modes(deadline);
    let leaders = modes.values().filter(|m| *m == "leader").count();
    let followers = modes.values().filter(|m| *m == "follower").count();
    assert_eq!((leaders, followers), (1, 2), "{modes:?}");

    // Server 4 dials every lower id; each refuses it with a log line.
    cluster.start_node(4);
    let until = Instant::now() + Duration::from_secs(20);
    let refused = |cluster: &TestCluster| {
        (1..=3).all(|n| {
            cluster
                .log(n)
                .contains("quorum peer refused: TLS handshake failed")
        })
    };
    while !refused(&cluster) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(refused(&cluster), "{}", cluster.log_tails());
    assert!(cluster.is_running(4), "the refused server keeps running");
    assert_eq!(cluster.mode(4), None, "a refused server never joins");
    // The three others still serve.
    let modes: Vec<Option<String>> = (1..=3).map(|n| cluster.mode(n)).collect();
    assert!(
        modes
            .iter()
            .all(|m| matches!(m.as_deref(), Some("leader" | "follower"))),
        "{modes:?}"
    );
}

/// The Rust `zookeeper-client` crate (its `tls` feature) over the secure port: a session
/// holding the client certificate's x509 id, a node only that id may touch, a data watch,
/// a multi; a certificate from another CA gets no session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_crate_over_tls() {
    use zookeeper_client as zk;
    let Some(pki) = Pki::create("rust-crate") else {
        return;
    };
    // The crate's rustls brings aws-lc-rs and Corral's brings ring: with two providers
    // built in, rustls wants the process default named (the server picks its own).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let port = free_port();
    let _server = TestServer::start(&pki.server_lines(port, "need"));
    let read = |file: &str| std::fs::read_to_string(pki.dir.join(file)).expect("pki file");
    let options = |who: &str| {
        zk::TlsOptions::default()
            .with_pem_ca(&read("ca.pem"))
            .expect("CA certificate")
            .with_pem_identity(&read(&format!("{who}.crt")), &read(&format!("{who}.key")))
            .expect("client identity")
    };
    let step = Duration::from_secs(20);
    let hosts = format!("127.0.0.1:{port}");

    let client = tokio::time::timeout(
        step,
        zk::Client::connector()
            .with_tls(options("client"))
            .secure_connect(&hosts),
    )
    .await
    .expect("a session within 20 s")
    .expect("a TLS session");
    let users = client.list_auth_users().await.expect("whoAmI");
    assert!(
        users
            .iter()
            .any(|u| u.scheme() == "x509" && u.user() == CLIENT_DN),
        "the session holds the certificate's x509 id: {users:?}"
    );
    let acl = [zk::Acl::new(
        zk::Permission::ALL,
        zk::AuthId::new("x509", CLIENT_DN),
    )];
    let only_this_client = zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acl));
    client
        .create("/rust-tls", b"v1", &only_this_client)
        .await
        .expect("create under an x509 ACL");
    let (data, _, watch) = client
        .get_and_watch_data("/rust-tls")
        .await
        .expect("getData with a watch");
    assert_eq!(data, b"v1");
    client
        .set_data("/rust-tls", b"v2", None)
        .await
        .expect("setData");
    let event = tokio::time::timeout(step, watch.changed())
        .await
        .expect("the data watch fires within 20 s");
    assert_eq!(event.event_type, zk::EventType::NodeDataChanged);
    let mut multi = client.new_multi_writer();
    multi
        .add_create("/rust-tls/a", b"", &only_this_client)
        .expect("multi create");
    multi
        .add_set_data("/rust-tls", b"v3", Some(1))
        .expect("multi setData");
    assert_eq!(multi.commit().await.expect("the multi commits").len(), 2);
    assert_eq!(
        client.get_data("/rust-tls").await.expect("getData").0,
        b"v3"
    );

    // Another CA's certificate: the handshake fails, no session.
    let intruder = tokio::time::timeout(
        step,
        zk::Client::connector()
            .with_tls(options("intruder"))
            .with_fail_eagerly()
            .secure_connect(&hosts),
    )
    .await;
    assert!(
        !matches!(intruder, Ok(Ok(_))),
        "a certificate from another CA got a session"
    );
}
