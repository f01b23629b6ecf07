//! The accept loop every Footfall HTTP service runs on: a connection cap, header-read and
//! keep-alive timeouts, panic isolation per request, the response layer (security headers,
//! `no-store` on `/api/*`, compression), and graceful shutdown that lets in-flight requests
//! finish.
//!
//! Shape borrowed from mini-redis: the caller passes the listener and a shutdown future, so
//! tests bind `127.0.0.1:0` and stop the server when they like.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use http::StatusCode;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::layer::{self, RequestInfo};
use crate::{answer, Handler, ResponseBody};

#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Connections served at once; further ones wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Time for a client to send the request head (slowloris guard).
    pub header_read_timeout: Duration,
    /// Cap on the request head (request line + headers).
    pub max_header_bytes: usize,
    /// How long shutdown waits for in-flight requests before dropping them.
    pub shutdown_grace: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            shutdown_grace: Duration::from_secs(20),
        }
    }
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
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let limits = limits.clone();
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            let _permit = permit;
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
                res = conn.as_mut() => log_conn_error(res, peer),
                _ = stopping(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    log_conn_error(conn.await, peer);
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
    let resp = match AssertUnwindSafe(handler.handle(req, peer))
        .catch_unwind()
        .await
    {
        Ok(resp) => resp,
        Err(_) => {
            tracing::error!(%peer, "request handler panicked");
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

fn log_conn_error(res: Result<(), hyper::Error>, peer: SocketAddr) {
    if let Err(e) = res {
        // Clients vanish, time out and send garbage all the time: debug, not error.
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
