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

/// What [`LiveClient::poll`] saw.
pub enum Polled {
    Message(Box<ServerMessage>),
    /// Nothing within the time given; the socket is open.
    Quiet,
    Closed,
}

/// Why [`LiveClient::open`] did not give a live client.
#[derive(Debug)]
pub enum OpenError {
    /// The server answered the upgrade with this status.
    Refused(u16),
    /// Anything else: connection, protocol, no snapshot.
    Failed(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Refused(status) => write!(f, "upgrade refused with {status}"),
            OpenError::Failed(why) => f.write_str(why),
        }
    }
}

/// A ticket from `POST {base}/api/ws-ticket` with the test admin token (blocking).
pub fn ticket(base: &str) -> Result<String, String> {
    let resp = ureq::post(&format!("{base}/api/ws-ticket"))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .map_err(|e| e.to_string())?;
    let body: serde_json::Value = resp.into_json().map_err(|e| e.to_string())?;
    body["ticket"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no ticket in {body}"))
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
        match Self::open(base, site, auth).await {
            Ok((client, snapshot, _)) => Ok((client, snapshot)),
            Err(OpenError::Refused(status)) => Err(status),
            Err(e) => panic!("{e}"),
        }
    }

    /// Connects with `auth`; the client, its first snapshot and the upgrade's response
    /// headers, or why it did not open (never panics: a dashboard retries).
    pub async fn open(
        base: &str,
        site: &str,
        auth: Auth<'_>,
    ) -> Result<(LiveClient, LiveUpdate, hyper::HeaderMap), OpenError> {
        let authority = base.trim_start_matches("http://").to_string();
        let stream = tokio::net::TcpStream::connect(&authority)
            .await
            .map_err(|e| OpenError::Failed(format!("connect {authority}: {e}")))?;
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
        let req = req
            .body(Empty::<Bytes>::new())
            .map_err(|e| OpenError::Failed(e.to_string()))?;
        let (ws, resp) = match handshake::client(&TokioExecutor::new(), req, stream).await {
            Ok(pair) => pair,
            Err(fastwebsockets::WebSocketError::InvalidStatusCode(status)) => {
                return Err(OpenError::Refused(status))
            }
            Err(e) => return Err(OpenError::Failed(format!("upgrade at {base}: {e}"))),
        };
        let mut client = LiveClient {
            ws: FragmentCollector::new(ws),
        };
        match client.next(Duration::from_secs(10)).await {
            Some(ServerMessage::Snapshot(s)) => Ok((client, s, resp.headers().clone())),
            other => Err(OpenError::Failed(format!(
                "expected a snapshot first, got {other:?}"
            ))),
        }
    }

    /// The next message within `within`, or `None`.
    pub async fn next(&mut self, within: Duration) -> Option<ServerMessage> {
        match self.poll(within).await {
            Polled::Message(m) => Some(*m),
            Polled::Quiet | Polled::Closed => None,
        }
    }

    /// The next message within `within`, or whether the socket stayed quiet or closed.
    pub async fn poll(&mut self, within: Duration) -> Polled {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.ws.read_frame()).await {
                Err(_) => return Polled::Quiet,
                Ok(Err(_)) => return Polled::Closed,
                Ok(Ok(frame)) => frame,
            };
            match frame.opcode {
                OpCode::Text => {
                    return match serde_json::from_slice(&frame.payload) {
                        Ok(m) => Polled::Message(Box::new(m)),
                        Err(_) => Polled::Closed,
                    }
                }
                OpCode::Close => return Polled::Closed,
                _ => {}
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
