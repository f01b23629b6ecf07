//! A WebSocket client for the live feed (`/ws`), as a dashboard would use it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use fastwebsockets::{handshake, FragmentCollector, OpCode};
use http_body_util::Empty;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use protocol::live::{LiveUpdate, ServerMessage};

use super::TOKEN;

/// How a live client proves who it is.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    /// `Authorization: Bearer <token>` (admin or share token).
    Bearer(&'a str),
    /// `&ticket=` from `POST /api/ws-ticket`.
    Ticket(&'a str),
}

pub struct LiveClient {
    ws: FragmentCollector<TokioIo<hyper::upgrade::Upgraded>>,
}

impl LiveClient {
    /// Connects to `base` (`http://host:port`) for `site` with the test admin token, and
    /// returns the client with the snapshot it got first.
    pub async fn connect(base: &str, site: &str) -> (LiveClient, LiveUpdate) {
        match Self::connect_as(base, site, Auth::Bearer(TOKEN)).await {
            Ok(pair) => pair,
            Err(status) => panic!("upgrade refused with {status}"),
        }
    }

    /// Connects with `auth`; the HTTP status when the upgrade is refused.
    pub async fn connect_as(
        base: &str,
        site: &str,
        auth: Auth<'_>,
    ) -> Result<(LiveClient, LiveUpdate), u16> {
        let authority = base.trim_start_matches("http://").to_string();
        let stream = tokio::net::TcpStream::connect(&authority)
            .await
            .expect("connect");
        let mut uri = format!("{base}/ws?site={site}");
        if let Auth::Ticket(ticket) = auth {
            uri.push_str(&format!("&ticket={ticket}"));
        }
        let mut req = Request::builder()
            .uri(uri)
            .header("Host", &authority)
            .header("Upgrade", "websocket")
            .header("Connection", "upgrade")
            .header("Sec-WebSocket-Key", handshake::generate_key())
            .header("Sec-WebSocket-Version", "13");
        if let Auth::Bearer(token) = auth {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        let req = req.body(Empty::<Bytes>::new()).expect("request");
        let ws = match handshake::client(&TokioExecutor::new(), req, stream).await {
            Ok((ws, _)) => ws,
            Err(fastwebsockets::WebSocketError::InvalidStatusCode(status)) => return Err(status),
            Err(e) => panic!("upgrade failed: {e}"),
        };
        let mut client = LiveClient {
            ws: FragmentCollector::new(ws),
        };
        match client.next(Duration::from_secs(5)).await {
            Some(ServerMessage::Snapshot(s)) => Ok((client, s)),
            other => panic!("expected a snapshot first, got {other:?}"),
        }
    }

    /// The next message within `within`, or `None`.
    pub async fn next(&mut self, within: Duration) -> Option<ServerMessage> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.read_frame())
                .await
                .ok()?
                .ok()?;
            if frame.opcode == OpCode::Text {
                return serde_json::from_slice(&frame.payload).ok();
            }
        }
    }

    /// Reads ticks until one satisfies `done`, for at most `within`.
    pub async fn until(
        &mut self,
        within: Duration,
        mut done: impl FnMut(&LiveUpdate) -> bool,
    ) -> Option<LiveUpdate> {
        let started = Instant::now();
        while started.elapsed() < within {
            let left = within.saturating_sub(started.elapsed());
            match self.next(left).await {
                Some(ServerMessage::Tick(t)) | Some(ServerMessage::Snapshot(t)) if done(&t) => {
                    return Some(t)
                }
                Some(_) => continue,
                None => return None,
            }
        }
        None
    }
}
