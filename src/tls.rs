//! TLS with rustls: the secure client port (`secureClientPort`, `ssl.*`) and the quorum mesh
//! (`sslQuorum`, `ssl.quorum.*`).
//!
//! Stores are PEM files, as with ZooKeeper's `PEM` store type: the key store holds the
//! private key and the certificate chain (leaf first), the trust store the CA certificates
//! peers are checked against. Contexts are built once at startup; a missing or unreadable
//! file is a one-line startup error naming the key and the file.
//!
//! A client certificate that verifies against the trust store gives the session the id
//! `x509:<subject>`, the subject formatted as Java's `X500Principal.getName()` prints it
//! (RFC 2253: the last RDN first, `CN=client,OU=ops,O=Example`), as ZooKeeper's
//! `X509AuthenticationProvider` does.

use crate::config::{ClientAuth, SslStores};
pub use futures_rustls::rustls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A store that cannot be used; the message names the key and the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key}={path}: {reason}")]
    File {
        key: String,
        path: PathBuf,
        reason: String,
    },
    #[error("{0}")]
    Setup(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_file(key: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| file_error(key, path, format!("cannot read: {e}")))
}

fn file_error(key: &str, path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::File {
        key: key.to_string(),
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Every `CERTIFICATE` block of a PEM file; at least one.
fn read_certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_file(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(key, path, format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(
            key,
            path,
            "no PEM certificate in it (Corral reads PEM stores only)",
        ));
    }
    Ok(certs)
}

/// A key store: its private key and certificate chain.
fn read_key_store(
    key: &str,
    path: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let bytes = read_file(key, path)?;
    if bytes
        .windows(b"ENCRYPTED PRIVATE KEY".len())
        .any(|w| w == b"ENCRYPTED PRIVATE KEY")
    {
        return Err(file_error(
            key,
            path,
            "the private key is encrypted; Corral reads unencrypted PEM keys only (openssl pkcs8 -in KEY -out PLAIN -nocrypt)",
        ));
    }
    let private = PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| file_error(key, path, format!("no usable PEM private key: {e}")))?;
    let certs = read_certs(key, path)?;
    Ok((certs, private))
}

fn read_roots(key: &str, path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(key, path)? {
        roots
            .add(cert)
            .map_err(|e| file_error(key, path, format!("unusable CA certificate: {e}")))?;
    }
    Ok(Arc::new(roots))
}

/// The TLS server context for the secure client port (`prefix` "ssl") or the quorum mesh
/// (`prefix` "ssl.quorum", client certificates always required).
pub fn server_config(stores: &SslStores, prefix: &str) -> Result<Arc<ServerConfig>, TlsError> {
    let key_key = format!("{prefix}.keyStore.location");
    let trust_key = format!("{prefix}.trustStore.location");
    let Some(key_path) = &stores.key_store_location else {
        return Err(TlsError::Setup(format!(
            "TLS needs {key_key} (a PEM file with the private key and the certificate chain)"
        )));
    };
    let (certs, private) = read_key_store(&key_key, key_path)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(format!("TLS setup: {e}")))?;
    let builder = match (&stores.trust_store_location, stores.client_auth) {
        (_, ClientAuth::None) => builder.with_no_client_auth(),
        (None, auth) => {
            return Err(TlsError::Setup(format!(
                "{prefix}.clientAuth is {} but {trust_key} is not set: set it to a PEM file of CA certificates, or set {prefix}.clientAuth=none",
                if auth == ClientAuth::Want { "want" } else { "need (the default)" }
            )))
        }
        (Some(trust_path), auth) => {
            let roots = read_roots(&trust_key, trust_path)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider());
            let verifier = if auth == ClientAuth::Want {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| file_error(&trust_key, trust_path, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs, private)
        .map_err(|e| file_error(&key_key, key_path, e.to_string()))?;
    Ok(Arc::new(config))
}

/// The TLS client context a server dials its quorum peers with (`ssl.quorum.*`): its own
/// certificate, and the peer's checked against the trust store (and its host name or
/// address unless `hostnameVerification=false`).
pub fn quorum_client_config(stores: &SslStores) -> Result<Arc<ClientConfig>, TlsError> {
    let key_key = "ssl.quorum.keyStore.location";
    let trust_key = "ssl.quorum.trustStore.location";
    let Some(key_path) = &stores.key_store_location else {
        return Err(TlsError::Setup(format!("sslQuorum=true needs {key_key}")));
    };
    let Some(trust_path) = &stores.trust_store_location else {
        return Err(TlsError::Setup(format!("sslQuorum=true needs {trust_key}")));
    };
    let (certs, private) = read_key_store(key_key, key_path)?;
    let roots = read_roots(trust_key, trust_path)?;
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| file_error(trust_key, trust_path, e.to_string()))?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PeerVerifier {
            inner: verifier,
            check_name: stores.hostname_verification,
        }));
    let config = builder
        .with_client_auth_cert(certs, private)
        .map_err(|e| file_error(key_key, key_path, e.to_string()))?;
    Ok(Arc::new(config))
}

/// The name a dialled peer's certificate must carry: its address or host name.
pub fn peer_server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))
}

/// Verifies a peer's chain against the trust store; the name check only when asked for.
#[derive(Debug)]
struct PeerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verified {
            // The chain checks are done before the name check: a name error means the
            // chain is good.
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The `x509` id of a verified client certificate: its subject as RFC 2253 text, or None
/// when the certificate cannot be parsed (it verified, so this does not happen in practice).
pub fn x509_id(cert: &CertificateDer<'_>) -> Option<String> {
    subject_rfc2253(cert.as_ref())
}

/// Serves one connection of the secure client port: the TLS handshake (bounded in time,
/// a failure is one log line and the connection is closed), then the client protocol.
pub async fn serve_client(
    ctx: std::rc::Rc<crate::shard::ShardCtx>,
    stream: glommio::net::TcpStream,
    config: Arc<ServerConfig>,
) {
    let Ok(peer) = stream.peer_addr() else { return };
    // maxClientCnxns and maxCnxns count a TLS connection from before its handshake.
    if !crate::shard::conn::admit(&ctx, peer) {
        return;
    }
    let _ = stream.set_nodelay(true);
    let handshake = futures_rustls::TlsAcceptor::from(config).accept(stream);
    let deadline = async {
        glommio::timer::sleep(HANDSHAKE_TIMEOUT).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no handshake in time",
        ))
    };
    let tls = match futures_lite::future::or(handshake, deadline).await {
        Ok(tls) => tls,
        Err(e) => {
            // The place is given back before the line is logged: whoever reads the line
            // (an operator, a test) finds the slot free already.
            ctx.shared.clients.release(peer.ip());
            tracing::warn!(%peer, error = %e, "TLS handshake with a client failed; closing");
            return;
        }
    };
    let dn = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(x509_id);
    let mut ids = Vec::new();
    if let Some(dn) = dn {
        ids.push(crate::proto::Id::new("x509", &dn));
        // Then, as ZooKeeper 3.8 lists it in whoAmI, `super` with an empty id.
        if ctx.settings.config.x509_super_user.as_deref() == Some(dn.as_str()) {
            tracing::info!(%peer, subject = %dn, "TLS client authenticated as the super user");
            ids.push(crate::proto::Id::new("super", ""));
        }
    }
    crate::shard::conn::serve_stream(ctx, tls, peer, ids).await;
}

/// The quorum mesh's TLS contexts (`sslQuorum=true`): every connection is mutual TLS, the
/// peer's certificate checked against `ssl.quorum.trustStore.location` both ways.
#[derive(Debug, Clone)]
pub struct MeshTls {
    pub server: Arc<ServerConfig>,
    pub client: Arc<ClientConfig>,
}

impl MeshTls {
    pub fn from_stores(stores: &SslStores) -> Result<MeshTls, TlsError> {
        if stores.trust_store_location.is_none() {
            return Err(TlsError::Setup(
                "sslQuorum=true needs ssl.quorum.trustStore.location (the CA certificates peers are checked against)".into(),
            ));
        }
        // Peers always authenticate each other, whatever ssl.quorum.clientAuth says.
        let server_stores = SslStores {
            client_auth: ClientAuth::Need,
            ..stores.clone()
        };
        Ok(MeshTls {
            server: server_config(&server_stores, "ssl.quorum")?,
            client: quorum_client_config(stores)?,
        })
    }

    /// The TLS handshake on a mesh connection, bounded in time: as the server when the peer
    /// called us, as the client (checking the certificate names `addr`'s address unless
    /// `hostnameVerification=false`) when we called it.
    pub async fn wrap(
        &self,
        stream: glommio::net::TcpStream,
        dialled: Option<std::net::SocketAddr>,
    ) -> Result<PeerStream, String> {
        let peer = stream.peer_addr().ok();
        let handshake = async {
            match dialled {
                Some(addr) => {
                    let name = ServerName::IpAddress(addr.ip().into());
                    futures_rustls::TlsConnector::from(self.client.clone())
                        .connect(name, stream)
                        .await
                        .map(|s| PeerStream::Tls(Box::new(s.into())))
                }
                None => futures_rustls::TlsAcceptor::from(self.server.clone())
                    .accept(stream)
                    .await
                    .map(|s| PeerStream::Tls(Box::new(s.into()))),
            }
        };
        let deadline = async {
            glommio::timer::sleep(HANDSHAKE_TIMEOUT).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no handshake in time",
            ))
        };
        futures_lite::future::or(handshake, deadline)
            .await
            .map_err(|e| {
                let from = peer.map(|a| a.to_string()).unwrap_or_default();
                tracing::warn!(%from, error = %e, "quorum peer refused: TLS handshake failed");
                format!("TLS handshake failed: {e}")
            })
    }
}

/// A quorum connection: plain TCP, or TLS with `sslQuorum=true`.
pub enum PeerStream {
    Plain(glommio::net::TcpStream),
    Tls(Box<futures_rustls::TlsStream<glommio::net::TcpStream>>),
}

impl futures_lite::AsyncRead for PeerStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            PeerStream::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            PeerStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl futures_lite::AsyncWrite for PeerStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            PeerStream::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            PeerStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            PeerStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => std::pin::Pin::new(s).poll_close(cx),
            PeerStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

// --- A minimal DER walk to the subject name ---------------------------------------------

/// One DER element: (tag, content, rest after it).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;

/// The subject Name's content (a SEQUENCE of RDN SETs) of an X.509 certificate.
fn subject_der(cert: &[u8]) -> Option<&[u8]> {
    let (SEQUENCE, cert, _) = tlv(cert)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = tlv(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // [0] EXPLICIT version, optional.
    let (tag, _, after) = tlv(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    // serialNumber, signature, issuer, validity, then subject.
    for _ in 0..4 {
        rest = tlv(rest)?.2;
    }
    let (SEQUENCE, subject, _) = tlv(rest)? else {
        return None;
    };
    Some(subject)
}

/// The subject as Java's `X500Principal.getName()` (RFC 2253) prints it.
fn subject_rfc2253(cert: &[u8]) -> Option<String> {
    let mut rdns = Vec::new();
    let mut rest = subject_der(cert)?;
    while !rest.is_empty() {
        let (SET, set, after) = tlv(rest)? else {
            return None;
        };
        rest = after;
        let mut avas = Vec::new();
        let mut inner = set;
        while !inner.is_empty() {
            let (SEQUENCE, ava, after) = tlv(inner)? else {
                return None;
            };
            inner = after;
            let (OID, oid, value) = tlv(ava)? else {
                return None;
            };
            avas.push(format_ava(oid, value)?);
        }
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// The attribute type keywords RFC 2253 output uses; others print as a dotted OID.
fn keyword(oid: &[u8]) -> Option<&'static str> {
    Some(match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x09] => "STREET",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID",
        _ => return None,
    })
}

fn dotted_oid(oid: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in oid {
        acc = acc.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
    }
    if arcs.is_empty() {
        return None;
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// `type=value` for one attribute; `value` is the DER element (tag, length, content).
fn format_ava(oid: &[u8], value: &[u8]) -> Option<String> {
    let (tag, content, _) = tlv(value)?;
    let text = match keyword(oid) {
        Some(_) => der_string(tag, content),
        None => None,
    };
    let name = match keyword(oid) {
        Some(k) => k.to_string(),
        None => dotted_oid(oid)?,
    };
    match text {
        Some(text) => Some(format!("{name}={}", escape_rfc2253(&text))),
        // Unknown types and non-string values: `#` and the hex of the whole DER element.
        None => {
            let (_, _, rest) = tlv(value)?;
            let element = &value[..value.len() - rest.len()];
            let hex: String = element.iter().map(|b| format!("{b:02x}")).collect();
            Some(format!("{name}=#{hex}"))
        }
    }
}

fn der_string(tag: u8, content: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String, NumericString, VisibleString.
        0x0c | 0x13 | 0x16 | 0x12 | 0x1a => String::from_utf8(content.to_vec()).ok(),
        // TeletexString: read as Latin-1, as Java does.
        0x14 => Some(content.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16BE.
        0x1e => {
            if !content.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = content
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// RFC 2253 escaping: `,+"\<>;` anywhere, `#` or a space first, a space last.
fn escape_rfc2253(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
        let content: Vec<u8> = parts.concat();
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(&content);
        out
    }

    fn ava(oid: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
        seq(
            SET,
            &[&seq(SEQUENCE, &[&seq(OID, &[oid]), &seq(tag, &[value])])],
        )
    }

    /// A certificate skeleton: only the fields the walk passes over, then the subject.
    fn cert_with_subject(subject: &[u8]) -> Vec<u8> {
        let version = seq(0xa0, &[&seq(0x02, &[&[2]])]);
        let serial = seq(0x02, &[&[1; 20]]);
        let alg = seq(SEQUENCE, &[&seq(OID, &[&[0x2a, 0x86, 0x48]])]);
        let issuer = seq(SEQUENCE, &[&ava(&[0x55, 0x04, 0x03], 0x0c, b"ca")]);
        let validity = seq(SEQUENCE, &[&seq(0x17, &[b"250101000000Z"])]);
        let tbs = seq(
            SEQUENCE,
            &[&version, &serial, &alg, &issuer, &validity, subject],
        );
        seq(SEQUENCE, &[&tbs, &alg])
    }

    #[test]
    fn subject_prints_as_rfc2253_last_rdn_first() {
        let subject = seq(
            SEQUENCE,
            &[
                &ava(&[0x55, 0x04, 0x06], 0x13, b"US"),
                &ava(&[0x55, 0x04, 0x0a], 0x0c, b"Corral, Inc"),
                &ava(&[0x55, 0x04, 0x0b], 0x0c, b"ops"),
                &ava(&[0x55, 0x04, 0x03], 0x0c, b"client one"),
            ],
        );
        let cert = cert_with_subject(&subject);
        assert_eq!(
            subject_rfc2253(&cert).as_deref(),
            Some("CN=client one,OU=ops,O=Corral\\, Inc,C=US")
        );
    }

    #[test]
    fn unknown_attribute_types_print_as_oid_and_hex() {
        // emailAddress 1.2.840.113549.1.9.1 as an IA5String.
        let email_oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];
        let subject = seq(
            SEQUENCE,
            &[
                &ava(&[0x55, 0x04, 0x03], 0x0c, b"x"),
                &ava(&email_oid, 0x16, b"a@b"),
            ],
        );
        let cert = cert_with_subject(&subject);
        assert_eq!(
            subject_rfc2253(&cert).as_deref(),
            Some("1.2.840.113549.1.9.1=#1603614062,CN=x")
        );
    }

    #[test]
    fn escaping_and_garbage() {
        assert_eq!(escape_rfc2253(" #a+b "), "\\ #a\\+b\\ ");
        assert_eq!(escape_rfc2253("#x"), "\\#x");
        assert_eq!(subject_rfc2253(&[]), None);
        assert_eq!(subject_rfc2253(&[0x30, 0x85, 1, 2, 3, 4, 5]), None);
        assert_eq!(subject_rfc2253(&[0x30, 0x03, 0x30, 0x01]), None);
    }

    #[test]
    fn store_errors_name_the_key_and_the_file() {
        let dir = std::env::temp_dir().join(format!("corral-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, b"not pem at all").unwrap();
        let stores = SslStores {
            key_store_location: Some(junk.clone()),
            ..SslStores::default()
        };
        let e = server_config(&stores, "ssl").unwrap_err().to_string();
        assert!(e.starts_with("ssl.keyStore.location="), "{e}");
        assert!(e.contains("junk.pem"), "{e}");
        let missing = SslStores {
            key_store_location: Some(dir.join("absent.pem")),
            ..SslStores::default()
        };
        let e = server_config(&missing, "ssl").unwrap_err().to_string();
        assert!(e.contains("absent.pem") && e.contains("cannot read"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
