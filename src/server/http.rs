//! The two HTTP endpoints: ZooKeeper's admin server (`admin.enableServer`, default on,
//! `admin.serverAddress:admin.serverPort` = 0.0.0.0:8080, `GET {admin.commandURL}/<name>`)
//! and the Prometheus endpoint (`metricsProvider.className` = ZooKeeper's Prometheus
//! provider, `metricsProvider.httpHost:httpPort` = 0.0.0.0:7000, `GET /metrics`).
//!
//! A hand-written HTTP/1.1 responder: request heads parsed by `httparse`, GET (and HEAD)
//! only, no bodies, one request per connection (`Connection: close`). Bounds: a request head
//! of at most [`REQUEST_BYTES_MAX`], read within the read timeout, at most
//! [`CONNECTIONS_MAX`] connections at once; anything malformed is answered 400 and closed.
//!
//! Where it runs: tasks on shard 0, in a task queue of their own with low shares, so under
//! load the shard's client work gets the executor first. The work per request is small (one
//! gather, then formatting a few hundred lines) and every await is bounded, so a slow or
//! hostile HTTP client cannot hold the shard; a dedicated thread would need its own channel
//! into the executors for the same gather.
//!
//! Binding happens in `server::run` before the executors start, with blocking sockets:
//! as in ZooKeeper, a metrics port that cannot be bound stops the server, while an admin
//! port that cannot be bound is logged and the server runs without it.

use crate::server::settings::Settings;
use crate::shard::ShardCtx;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use std::cell::Cell;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::Duration;

/// The largest request head accepted.
pub const REQUEST_BYTES_MAX: usize = 8 * 1024;
/// Connections served at once per endpoint; more are closed at once.
pub const CONNECTIONS_MAX: usize = 64;
/// Headers parsed per request.
const HEADERS_MAX: usize = 32;
/// Read timeout of the metrics endpoint (the admin server uses `admin.idleTimeout`).
const METRICS_READ_TIMEOUT_MS: u64 = 10_000;
/// Longest any read or write may take, whatever the configuration.
const READ_TIMEOUT_MS_MAX: u64 = 30_000;

/// Which endpoint a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Admin,
    Metrics,
}

/// Listening sockets bound before the executors start.
#[derive(Debug, Default)]
pub struct Listeners {
    pub admin: Option<std::net::TcpListener>,
    pub metrics: Option<std::net::TcpListener>,
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

fn resolve(host: &crate::config::Host, port: u16) -> Result<SocketAddr, BindError> {
    use crate::config::Host;
    match host {
        Host::Ip(ip) => Ok(SocketAddr::new(*ip, port)),
        Host::Name(name) => {
            let err = |source| BindError::Resolve {
                host: name.clone(),
                source,
            };
            (name.as_str(), port)
                .to_socket_addrs()
                .map_err(err)?
                .next()
                .ok_or_else(|| err(std::io::Error::other("no address")))
        }
    }
}

fn listen(addr: SocketAddr) -> Result<std::net::TcpListener, BindError> {
    std::net::TcpListener::bind(addr).map_err(|source| BindError::Listen { addr, source })
}

/// Binds the endpoints the config turns on. Only a metrics endpoint that cannot be bound is
/// an error (ZooKeeper does not start without its metrics provider either).
pub fn bind(settings: &Settings) -> Result<Listeners, BindError> {
    let cfg = &settings.config;
    let mut out = Listeners::default();
    if cfg.metrics_prometheus_enabled {
        let addr = resolve(
            &cfg.metrics_provider_http_host,
            cfg.metrics_provider_http_port,
        )?;
        let l = listen(addr)?;
        tracing::info!(addr = %l.local_addr().unwrap_or(addr), "metrics endpoint listening (/metrics)");
        out.metrics = Some(l);
    }
    if cfg.admin_enable_server {
        match resolve(&cfg.admin_server_address, cfg.admin_server_port).and_then(listen) {
            Ok(l) => {
                tracing::info!(
                    addr = %l.local_addr().map_or_else(|_| "?".to_string(), |a| a.to_string()),
                    url = %cfg.admin_command_url,
                    "admin server listening"
                );
                out.admin = Some(l);
            }
            Err(e) => {
                tracing::warn!(error = %e, "problem starting the admin server; running without it")
            }
        }
    }
    Ok(out)
}

/// Serves the bound endpoints from the current executor (shard 0).
pub fn spawn(ctx: Rc<ShardCtx>, listeners: Listeners) {
    use std::os::unix::io::{FromRawFd, IntoRawFd};
    let queue = glommio::executor().create_task_queue(
        glommio::Shares::Static(50),
        glommio::Latency::NotImportant,
        "http",
    );
    for (endpoint, listener) in [
        (Endpoint::Admin, listeners.admin),
        (Endpoint::Metrics, listeners.metrics),
    ] {
        let Some(listener) = listener else { continue };
        let fd = listener.into_raw_fd();
        // SAFETY: `fd` is a listening socket `into_raw_fd` just released; the glommio
        // listener becomes its only owner and closes it.
        let listener = unsafe { glommio::net::TcpListener::from_raw_fd(fd) };
        let ctx = ctx.clone();
        let task = glommio::spawn_local_into(accept_loop(ctx, endpoint, listener, queue), queue);
        match task {
            Ok(t) => {
                t.detach();
            }
            Err(e) => tracing::error!(error = %e, ?endpoint, "cannot start the HTTP endpoint"),
        }
    }
}

async fn accept_loop(
    ctx: Rc<ShardCtx>,
    endpoint: Endpoint,
    listener: glommio::net::TcpListener,
    queue: glommio::TaskQueueHandle,
) {
    let active = Rc::new(Cell::new(0usize));
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, ?endpoint, "accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if active.get() >= CONNECTIONS_MAX {
            // Dropping the stream closes it.
            continue;
        }
        active.set(active.get() + 1);
        let (ctx, active) = (ctx.clone(), active.clone());
        let task = glommio::spawn_local_into(
            async move {
                serve(&ctx, endpoint, stream).await;
                active.set(active.get() - 1);
            },
            queue,
        );
        if let Ok(t) = task {
            // The join handle is not needed: the task ends by itself.
            drop(t.detach());
        }
    }
}

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// `name=value` pairs of the query string, undecoded.
    pub query: Vec<(String, String)>,
}

/// What reading a request head gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Complete(Request),
    Partial,
    Invalid,
}

/// Parses a request head from the bytes read so far (sans-IO).
pub fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {
            let (Some(method), Some(target)) = (req.method, req.path) else {
                return Parsed::Invalid;
            };
            if !target.starts_with('/') {
                return Parsed::Invalid;
            }
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let query = query
                .split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (k.to_string(), v.to_string())
                })
                .collect();
            Parsed::Complete(Request {
                method: method.to_string(),
                path: path.to_string(),
                query,
            })
        }
        Ok(httparse::Status::Partial) if buf.len() < REQUEST_BYTES_MAX => Parsed::Partial,
        _ => Parsed::Invalid,
    }
}

/// A response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: String) -> Response {
        Response {
            status,
            content_type,
            body,
        }
    }

    fn text(status: u16, body: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", format!("{body}\n"))
    }

    /// The bytes on the wire; HEAD gets the head only.
    pub fn encode(&self, head_only: bool) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            503 => "Service Unavailable",
            _ => "Error",
        };
        let mut out = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        if self.status == 405 {
            out.push_str("Allow: GET, HEAD\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if !head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

/// Reads one request head, answers it, closes.
async fn serve(ctx: &Rc<ShardCtx>, endpoint: Endpoint, mut stream: TcpStream) {
    let timeout_ms = match endpoint {
        Endpoint::Metrics => METRICS_READ_TIMEOUT_MS,
        Endpoint::Admin => u64::from(ctx.settings.config.admin_idle_timeout_ms),
    }
    .clamp(100, READ_TIMEOUT_MS_MAX);
    let timeout = Duration::from_millis(timeout_ms);
    let _ = stream.set_write_timeout(Some(timeout));
    let read = glommio::timer::timeout(timeout, async {
        let mut buf = vec![0u8; REQUEST_BYTES_MAX];
        let mut len = 0;
        loop {
            let n = stream.read(&mut buf[len..]).await?;
            if n == 0 {
                return Ok(None);
            }
            len += n;
            match parse(&buf[..len]) {
                Parsed::Partial => continue,
                Parsed::Complete(req) => return Ok(Some(Ok(req))),
                Parsed::Invalid => return Ok(Some(Err(()))),
            }
        }
    })
    .await;
    let (response, head_only) = match read {
        Ok(None) => return,
        Ok(Some(Err(()))) => (Response::text(400, "Bad Request"), false),
        Err(glommio::GlommioError::TimedOut(_)) => (Response::text(408, "Request Timeout"), false),
        Err(_) => return,
        Ok(Some(Ok(req))) => {
            let head_only = req.method == "HEAD";
            if req.method != "GET" && !head_only {
                (Response::text(405, "Method Not Allowed"), false)
            } else {
                (route(ctx, endpoint, &req).await, head_only)
            }
        }
    };
    let _ = stream.write_all(&response.encode(head_only)).await;
    let _ = stream.flush().await;
    let _ = stream.shutdown(std::net::Shutdown::Both).await;
}

async fn route(ctx: &Rc<ShardCtx>, endpoint: Endpoint, req: &Request) -> Response {
    match endpoint {
        Endpoint::Metrics => {
            if req.path != "/metrics" {
                return Response::text(404, "Not Found");
            }
            match crate::server::fourlw::gather_all(ctx, false).await {
                Some(g) => Response::new(
                    200,
                    crate::metrics::prometheus::CONTENT_TYPE,
                    crate::metrics::prometheus::render(&g),
                ),
                None => Response::text(
                    503,
                    "This ZooKeeper instance is not currently serving requests",
                ),
            }
        }
        Endpoint::Admin => {
            let base = ctx.settings.config.admin_command_url.trim_end_matches('/');
            let Some(rest) = req.path.strip_prefix(base) else {
                return Response::text(404, "Not Found");
            };
            match rest {
                "" | "/" => Response::new(
                    200,
                    "text/html; charset=utf-8",
                    crate::server::admin::command_links(base),
                ),
                _ => match rest.strip_prefix('/') {
                    Some(name) if !name.contains('/') => {
                        let json = crate::server::admin::run(ctx, name, &req.query).await;
                        Response::new(200, "application/json; charset=utf-8", json)
                    }
                    _ => Response::text(404, "Not Found"),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_get_with_a_query() {
        let p = parse(b"GET /commands/stmk?traceMask=5&x HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(
            p,
            Parsed::Complete(Request {
                method: "GET".into(),
                path: "/commands/stmk".into(),
                query: vec![("traceMask".into(), "5".into()), ("x".into(), "".into())],
            })
        );
    }

    #[test]
    fn partial_until_the_blank_line() {
        assert_eq!(
            parse(b"GET /metrics HTTP/1.1\r\nHost: a\r\n"),
            Parsed::Partial
        );
        assert_eq!(parse(b""), Parsed::Partial);
    }

    #[test]
    fn garbage_and_oversize_are_invalid() {
        assert_eq!(parse(b"\x00\x01\x02 nonsense\r\n\r\n"), Parsed::Invalid);
        assert_eq!(parse(b"GET metrics HTTP/1.1\r\n\r\n"), Parsed::Invalid);
        let mut big = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        big.resize(REQUEST_BYTES_MAX, b'a');
        assert_eq!(parse(&big), Parsed::Invalid);
    }

    #[test]
    fn encodes_head_and_body() {
        let r = Response::new(200, "application/json", "{}".into());
        let text = String::from_utf8(r.encode(false)).unwrap_or_default();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Content-Length: 2\r\n"));
        assert!(text.ends_with("\r\n\r\n{}"));
        let head = String::from_utf8(r.encode(true)).unwrap_or_default();
        assert!(head.ends_with("\r\n\r\n"));
    }
}
