//! A WebSocket client for the live feed (`/ws`), as a dashboard would use it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use fastwebsockets::{handshake, FragmentCollector, OpCode};
use http_body_util::Empty;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use protocol::live::{LiveUpdate, ServerMessage};

use super::TOKEN;

/// What [`LiveClient::poll`] saw.
pub enum Polled {
    Message(Box<ServerMessage>),
    /// Nothing within the time given; the socket is open.
    Quiet,
    Closed,
}

pub struct LiveClient {
    ws: FragmentCollector<TokioIo<hyper::upgrade::Upgraded>>,
}

/// How a live client authenticates: the admin token in a header (non-browser clients), or a
/// one-time ticket in the URL (what the dashboard does).
pub enum Auth {
    Bearer,
    Ticket(String),
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

impl LiveClient {
    /// Connects to `base` (`http://host:port`) for `site` with the test admin token, and
    /// returns the client with the snapshot it got first.
    pub async fn connect(base: &str, site: &str) -> (LiveClient, LiveUpdate) {
        match Self::open(base, site, Auth::Bearer).await {
            Ok((client, snapshot, _)) => (client, snapshot),
            Err(e) => panic!("{e}"),
        }
    }

    /// Connects with `auth`; the client, its first snapshot and the upgrade's response
    /// headers, or why it did not open.
    pub async fn open(
        base: &str,
        site: &str,
        auth: Auth,
    ) -> Result<(LiveClient, LiveUpdate, hyper::HeaderMap), String> {
        let authority = base.trim_start_matches("http://").to_string();
        let stream = tokio::net::TcpStream::connect(&authority)
            .await
            .map_err(|e| format!("connect {authority}: {e}"))?;
        let uri = match &auth {
            Auth::Bearer => format!("{base}/ws?site={site}"),
            Auth::Ticket(t) => format!("{base}/ws?site={site}&ticket={t}"),
        };
        let mut req = Request::builder()
            .uri(uri)
            .header("Host", &authority)
            .header("Upgrade", "websocket")
            .header("Connection", "upgrade")
            .header("Sec-WebSocket-Key", handshake::generate_key())
            .header("Sec-WebSocket-Version", "13");
        if let Auth::Bearer = auth {
            req = req.header("Authorization", format!("Bearer {TOKEN}"));
        }
        let req = req.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
        let (ws, resp) = handshake::client(&TokioExecutor::new(), req, stream)
            .await
            .map_err(|e| format!("upgrade at {base}: {e}"))?;
        let mut client = LiveClient {
            ws: FragmentCollector::new(ws),
        };
        match client.next(Duration::from_secs(10)).await {
            Some(ServerMessage::Snapshot(s)) => Ok((client, s, resp.headers().clone())),
            other => Err(format!("expected a snapshot first, got {other:?}")),
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
