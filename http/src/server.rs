//! The accept loop every Footfall HTTP service runs on: a connection cap in all and per client
//! address, header-read and keep-alive timeouts, panic isolation per request, the response layer (security headers,
//! `no-store` on `/api/*`, compression), and graceful shutdown that lets in-flight requests
//! finish.
//!
//! Shape borrowed from mini-redis: the caller passes the listener and a shutdown future, so
//! tests bind `127.0.0.1:0` and stop the server when they like.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;
use http::StatusCode;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::layer::{self, RequestInfo};
use crate::log_limit::LogLimit;
use crate::{answer, client_ip, Handler, ResponseBody};

#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Connections served at once; further ones wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Connections one client address (an IPv4 address, an IPv6 /64) may hold at once; past
    /// it new ones are closed as soon as they are accepted, so one client cannot take every
    /// slot of `max_connections` and leave everyone else waiting. 0 = no cap.
    pub max_connections_per_ip: usize,
    /// Peers exempt from the per-address cap: the trusted proxies (a CDN, nginx), through
    /// which many clients' connections arrive from one address.
    pub trusted_proxies: Vec<IpNet>,
    /// Time for a client to send the request head (slowloris guard).
    pub header_read_timeout: Duration,
    /// Cap on the request head (request line + headers).
    pub max_header_bytes: usize,
    /// How long shutdown waits for in-flight requests before dropping them.
    pub shutdown_grace: Duration,
}

/// Far more than a browser opens to one host (6) or a busy office behind one NAT needs, far
/// fewer than the 10,000 slots in all.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 10_000,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            trusted_proxies: Vec::new(),
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// Connections the kernel may hold for `accept` (capped by `net.core.somaxconn`). Small
/// backlogs (128 is common) overflow under a burst of connections even while the accept loop
/// keeps up, and a dropped handshake costs its client a one-second retransmit.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listener for [`serve`] with a [`LISTEN_BACKLOG`]-deep accept queue.
///
/// # Errors
/// When the address cannot be bound (in use, not local, no permission).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // As `TcpListener::bind` does: a restarted server can bind while old connections linger.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `handler` on `listener` until `shutdown` resolves, then stops accepting, asks every
/// connection to finish its current request, and waits up to `shutdown_grace` for them.
///
/// # Errors
/// Only if the listener cannot report its address. Accept errors (e.g. out of file
/// descriptors) are logged and retried with exponential backoff, never fatal.
pub async fn serve(
    listener: TcpListener,
    handler: Arc<dyn Handler>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let local = listener.local_addr()?;
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip = PerIp::new(
        limits.max_connections_per_ip,
        limits.trusted_proxies.clone(),
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut backoff = Duration::from_millis(5);
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => {
                    backoff = Duration::from_millis(5);
                    conn
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?backoff, "accept failed; backing off");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        // Reap finished connection tasks so the set stays small.
        while connections.try_join_next().is_some() {}
        let Some(held) = per_ip.admit(peer.ip()) else {
            // Closed at once: the slot and the permit go back to everyone else.
            static OVER_CAP: LogLimit = LogLimit::new(Duration::from_secs(60));
            if let Some(suppressed) = OVER_CAP.allow() {
                tracing::warn!(
                    cap = limits.max_connections_per_ip,
                    suppressed,
                    "a client address is over its connection cap; closing its new connections"
                );
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let limits = limits.clone();
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            let _permit = permit;
            let _held = held;
            let service = service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(guarded(handler, req, peer).await) }
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(limits.max_header_bytes.max(8192))
                .keep_alive(true);
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                res = conn.as_mut() => log_conn_error(res),
                _ = stopping(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    log_conn_error(conn.await);
                }
            }
        });
    }

    tracing::info!(%local, open = connections.len(), "shutting down: draining connections");
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = connections.len(),
            "shutdown grace elapsed; dropping connections"
        );
        connections.abort_all();
    }
    Ok(())
}

/// Runs the handler with panics caught — a bug hit by one request answers 500 and never
/// takes the connection task, let alone the worker, down — then the response layer.
async fn guarded(
    handler: Arc<dyn Handler>,
    req: hyper::Request<hyper::body::Incoming>,
    peer: SocketAddr,
) -> hyper::Response<ResponseBody> {
    let info = RequestInfo::of(&req);
    // For the panic line: the route, not the query (which may hold anything a client sent).
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let resp = match AssertUnwindSafe(handler.handle(req, peer))
        .catch_unwind()
        .await
    {
        Ok(resp) => resp,
        Err(_) => {
            // No client address: logs must not hold personal data (the path and method
            // find the bug).
            let cut = (0..=path.len().min(200))
                .rev()
                .find(|&i| path.is_char_boundary(i))
                .unwrap_or(0);
            let path = &path[..cut];
            tracing::error!(%method, path, "request handler panicked");
            answer::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
                None,
            )
        }
    };
    layer::finish(resp, &info).await
}

/// Resolves once shutdown has been signalled (or the signaller is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

fn log_conn_error(res: Result<(), hyper::Error>) {
    if let Err(e) = res {
        // Clients vanish, time out and send garbage all the time: debug, not error (and no
        // client address: logs hold no personal data).
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Open connections per client address (see [`ServerLimits::max_connections_per_ip`]). The
/// map holds only addresses with a connection open, so it is bounded by `max_connections`.
struct PerIp {
    cap: usize,
    exempt: Vec<IpNet>,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One admitted connection's place in its address's count, given back on drop.
struct Held {
    key: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerIp {
    fn new(cap: usize, exempt: Vec<IpNet>) -> Self {
        PerIp {
            cap,
            exempt,
            open: Arc::default(),
        }
    }

    /// `None` when `peer` already holds its cap of connections. Exempt peers and a cap of 0
    /// are admitted with an empty hold.
    fn admit(&self, peer: IpAddr) -> Option<Option<Held>> {
        if self.cap == 0 || self.exempt.iter().any(|net| net.contains(&peer)) {
            return Some(None);
        }
        let key = client_ip::limit_key(peer);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_default();
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(Some(Held {
            key,
            open: self.open.clone(),
        }))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn per_ip_cap_holds_and_frees() {
        let per_ip = PerIp::new(2, vec!["10.0.0.0/8".parse().expect("net")]);
        let a = per_ip.admit(ip("192.0.2.1")).expect("first");
        let b = per_ip.admit(ip("192.0.2.1")).expect("second");
        assert!(per_ip.admit(ip("192.0.2.1")).is_none(), "one over the cap");
        // Another address, and another /64's neighbour, are counted apart.
        assert!(per_ip.admit(ip("192.0.2.2")).is_some());
        let _v6 = per_ip.admit(ip("2001:db8::1")).expect("v6");
        let _v6b = per_ip.admit(ip("2001:db8::2")).expect("same /64");
        assert!(
            per_ip.admit(ip("2001:db8::3")).is_none(),
            "a /64 is one client"
        );
        // A proxy is exempt.
        let proxied: Vec<_> = (0..10).map(|_| per_ip.admit(ip("10.1.2.3"))).collect();
        assert!(proxied.iter().all(Option::is_some));
        drop(a);
        let _c = per_ip
            .admit(ip("192.0.2.1"))
            .expect("a slot was given back");
        drop(b);
        assert_eq!(
            per_ip.open.lock().expect("lock").get(&ip("192.0.2.1")),
            Some(&1)
        );
        assert!(PerIp::new(0, Vec::new()).admit(ip("192.0.2.1")).is_some());
    }
}
