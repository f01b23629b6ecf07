//! The WebSocket gateway (`fastwebsockets` on hyper): `GET /ws?site=S` and
//! `POST /api/ws-ticket`.
//!
//! A connection is authenticated *before* the upgrade — a Bearer header (non-browser
//! clients) or a one-time ticket (browsers; any processor's, see [`super::tickets`]) — and
//! refused with a JSON 401 otherwise. A
//! browser's `Origin` must be the dashboard's own (the `Host` it asked) or one configured
//! ([`Gateway::with_allowed_origins`]): a page elsewhere holding a leaked ticket cannot read
//! the feed (403 before the upgrade). The admin token watches every site; a share link (with
//! [`Gateway::with_credentials`]) only its own, and so does a ticket it asked for (403 for
//! any other site). A connection then
//! gets a snapshot, and ticks whenever the hub publishes a change for its site, at most every
//! `min_tick`. A writer task owns the socket's write half; a reader task handles pings,
//! pongs, close and `resync`. A client that stops reading stalls only its own writer, which
//! gives up after `write_timeout`; the hub's watch channel keeps just the newest state for
//! it meanwhile, so memory stays flat.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fastwebsockets::{upgrade, Frame, OpCode, Payload, WebSocket, WebSocketError};
use footfall_http::{answer, ResponseBody};
use http::header::{AUTHORIZATION, HOST, ORIGIN};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use protocol::api::to_json;
use protocol::live::{ClientMessage, FeedEvent, LiveUpdate, ServerMessage, LIVE_PROTOCOL_VERSION};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::hub::{LiveHub, SiteView};
use super::tickets::{LocalSpentTickets, SpentTickets, TicketError, TicketStore};
use crate::auth::{AdminToken, Credential, Credentials};

/// Close codes, so a client can tell why it was closed.
mod close_code {
    /// The server is shutting down: reconnect later.
    pub const GOING_AWAY: u16 = 1001;
    /// The client sent something it must not (too big, not text).
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    /// No pong for `idle_timeout`.
    pub const IDLE: u16 = 4000;
    /// The client did not read for `write_timeout`.
    pub const TOO_SLOW: u16 = 4001;
}

#[derive(Debug, Clone)]
pub struct GatewayLimits {
    /// Shortest gap between two ticks to one client.
    pub min_tick: Duration,
    pub ping_interval: Duration,
    /// Close when nothing (pong or message) came from the client for this long.
    pub idle_timeout: Duration,
    /// Close when the client does not take a message for this long.
    pub write_timeout: Duration,
    /// Largest message accepted from a client.
    pub max_message_bytes: usize,
    pub max_connections: usize,
}

impl Default for GatewayLimits {
    fn default() -> Self {
        GatewayLimits {
            min_tick: Duration::from_millis(200),
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            max_message_bytes: 4 * 1024,
            max_connections: 10_000,
        }
    }
}

/// Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    hub: LiveHub,
    token: AdminToken,
    /// Share links too, when set; the admin token alone otherwise.
    credentials: Option<Credentials>,
    tickets: TicketStore,
    limits: GatewayLimits,
    slots: Arc<Semaphore>,
    /// Origins besides the dashboard's own whose pages may open `/ws`, as `scheme://host[:port]`
    /// in lower case.
    allowed_origins: Arc<Vec<String>>,
}

type Reply = Response<ResponseBody>;

fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    answer::error(status, code, message, None)
}

impl Gateway {
    pub fn new(hub: LiveHub, token: AdminToken, limits: GatewayLimits) -> Self {
        let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        Gateway {
            hub,
            tickets: TicketStore::new(&token, Arc::new(LocalSpentTickets::default())),
            token,
            credentials: None,
            limits,
            slots,
            allowed_origins: Arc::default(),
        }
    }

    /// Records spent tickets in `spent` — shared by every processor of a deployment — instead
    /// of this process's memory, so a ticket opens one socket deployment-wide.
    pub fn with_spent_tickets(mut self, spent: Arc<dyn SpentTickets>) -> Self {
        self.tickets = TicketStore::new(&self.token, spent);
        self
    }

    /// Lets pages of these origins (`https://admin.example.com`) open `/ws` besides the
    /// dashboard's own origin: a dashboard served from another host, or behind a proxy that
    /// does not pass `Host` on.
    pub fn with_allowed_origins(mut self, origins: Vec<String>) -> Self {
        self.allowed_origins = Arc::new(
            origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|o| !o.is_empty())
                .collect(),
        );
        self
    }

    /// A request without `Origin` comes from no browser page (a script, a server): it cannot
    /// be a page elsewhere riding on a user's credentials, and needs its own token anyway.
    /// With `Origin`, it is the dashboard's own origin (the host the browser asked for in
    /// `Host`) or one configured.
    fn origin_allowed<B>(&self, req: &Request<B>) -> bool {
        let Some(origin) = req.headers().get(ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = origin.trim().to_ascii_lowercase();
        if self.allowed_origins.contains(&origin) {
            return true;
        }
        let host = req
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        host.is_some_and(|host| same_origin(&origin, host))
    }

    /// Accepts share links as well as the admin token (each for its own site), as the stats
    /// API does.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Who the `Authorization` header is. A store that cannot answer about a share link
    /// counts as nobody here: the client retries the live view, which is harmless.
    async fn credential(&self, header: Option<&str>) -> Option<Credential> {
        if self.token.verify_header(header) {
            return Some(Credential::Admin);
        }
        let credentials = self.credentials.as_ref()?;
        match credentials.resolve(header).await {
            Ok(who) => who,
            Err(e) => {
                tracing::warn!(error = %e, "cannot check a share link");
                None
            }
        }
    }

    /// Does this gateway answer `path`?
    pub fn owns(path: &str) -> bool {
        path == "/ws" || path == "/api/ws-ticket"
    }

    pub async fn handle(&self, req: Request<Incoming>) -> Reply {
        match req.uri().path() {
            "/api/ws-ticket" => self.ticket(&req).await,
            _ => self.upgrade(req).await,
        }
    }

    /// `POST /api/ws-ticket[?site=S]`: a one-time ticket for whoever the Bearer token is. With
    /// `site`, the ticket opens that site only (a share link's always opens its own).
    async fn ticket(&self, req: &Request<Incoming>) -> Reply {
        if req.method() != Method::POST {
            return answer::method_not_allowed("POST");
        }
        let auth = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let Some(who) = self.credential(auth).await else {
            return unauthorized();
        };
        let params = query_params(req);
        let holder = match (who, params.get("site").map(|s| s.trim())) {
            (who, None | Some("")) => who,
            (who, Some(site)) => match protocol::validate::site(site) {
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "invalid_parameter",
                        &format!("site: {}", e.message),
                    )
                }
                Ok(site) if !who.reads(&site) => return other_site(),
                Ok(site) => Credential::Share { site },
            },
        };
        let ticket = self.tickets.issue(&holder);
        answer::json(StatusCode::OK, &serde_json::json!({ "ticket": ticket }))
    }

    async fn upgrade(&self, mut req: Request<Incoming>) -> Reply {
        // Before the credentials: a foreign page learns nothing, and burns no ticket.
        if !self.origin_allowed(&req) {
            return error(
                StatusCode::FORBIDDEN,
                "forbidden_origin",
                "pages of this origin may not open the live feed; the server's \
                 --ws-allowed-origins lists the ones that may",
            );
        }
        let params = query_params(&req);
        let auth = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let who = match (self.credential(auth).await, params.get("ticket")) {
            (Some(who), _) => Some(who),
            (None, None) => None,
            (None, Some(ticket)) => match self.tickets.redeem(ticket).await {
                Ok(who) => Some(who),
                Err(TicketError::Invalid) => None,
                Err(TicketError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "cannot check a WebSocket ticket");
                    return error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "cannot check the ticket now; try again",
                    );
                }
            },
        };
        let Some(who) = who else {
            return unauthorized();
        };
        let site = match params
            .get("site")
            .map(|s| protocol::validate::site(s.trim()))
        {
            Some(Ok(site)) => site,
            Some(Err(e)) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_parameter",
                    &format!("site: {}", e.message),
                )
            }
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_parameter",
                    "site is required",
                )
            }
        };
        if !who.reads(&site) {
            return other_site();
        }
        if !upgrade::is_upgrade_request(&req) {
            return error(
                StatusCode::UPGRADE_REQUIRED,
                "upgrade_required",
                "this is a WebSocket endpoint",
            );
        }
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "too many live connections",
            );
        };
        let Some(states) = self.hub.subscribe(&site) else {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "shutting down",
            );
        };
        let (response, upgraded) = match upgrade::upgrade(&mut req) {
            Ok(pair) => pair,
            Err(e) => return error(StatusCode::BAD_REQUEST, "bad_handshake", &e.to_string()),
        };
        let limits = self.limits.clone();
        tokio::spawn(async move {
            match upgraded.await {
                Ok(ws) => serve_socket(ws, site, states, limits, permit).await,
                Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
            }
        });
        let (parts, _) = response.into_parts();
        Response::from_parts(parts, ResponseBody::default())
    }
}

/// Is `origin` (`scheme://host[:port]`, lower case) the origin of a page served by the host
/// in `host` (a `Host` header)? A `Host` without a port (a proxy passing `$host`) matches on
/// the name alone.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let split = |a: &str| -> (String, Option<String>) {
        // `[v6]:port`, `name:port`, or no port.
        match a.rsplit_once(':') {
            Some((name, port))
                if !port.contains(']') && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                (name.to_owned(), Some(port.to_owned()))
            }
            _ => (a.to_owned(), None),
        }
    };
    let (origin_name, origin_port) = split(authority);
    let (host_name, host_port) = split(&host.trim().to_ascii_lowercase());
    let origin_port = origin_port.unwrap_or_else(|| default_port.to_owned());
    origin_name == host_name && host_port.is_none_or(|p| p == origin_port)
}

fn query_params<B>(req: &Request<B>) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn unauthorized() -> Reply {
    error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "send Authorization: Bearer <admin token or share token>, or a ticket from POST /api/ws-ticket",
    )
}

fn other_site() -> Reply {
    error(
        StatusCode::FORBIDDEN,
        "forbidden",
        "this credential watches another site",
    )
}

/// What the reader tells the writer.
enum Control {
    Pong(Vec<u8>),
    Alive,
    Resync,
    Close(u16),
}

async fn serve_socket(
    mut ws: WebSocket<TokioIo<Upgraded>>,
    site: String,
    mut states: watch::Receiver<Arc<SiteView>>,
    limits: GatewayLimits,
    _permit: OwnedSemaphorePermit,
) {
    ws.set_auto_pong(false);
    ws.set_auto_close(false);
    ws.set_max_message_size(limits.max_message_bytes);
    let (mut reader, mut writer) = ws.split(tokio::io::split);
    // Small and bounded: the reader waits if the writer is behind, which is back-pressure on
    // a client that floods us with pings.
    let (control_tx, mut control) = mpsc::channel::<Control>(8);

    let reader_task = tokio::spawn(async move {
        let mut noop = |_: Frame<'_>| async { Ok::<(), std::io::Error>(()) };
        loop {
            let frame = match reader.read_frame(&mut noop).await {
                Ok(frame) => frame,
                Err(WebSocketError::FrameTooLarge) => {
                    let _ = control_tx.send(Control::Close(close_code::TOO_BIG)).await;
                    return;
                }
                Err(_) => return,
            };
            let message = match frame.opcode {
                OpCode::Close => Control::Close(1000),
                OpCode::Ping => Control::Pong(frame.payload.to_vec()),
                OpCode::Pong => Control::Alive,
                OpCode::Text => match serde_json::from_slice::<ClientMessage>(&frame.payload) {
                    Ok(ClientMessage::Resync) => Control::Resync,
                    Err(_) => Control::Close(close_code::POLICY),
                },
                _ => Control::Close(close_code::POLICY),
            };
            let stop = matches!(message, Control::Close(_));
            if control_tx.send(message).await.is_err() || stop {
                return;
            }
        }
    });

    let mut last_seq = 0;
    let mut last_heard = Instant::now();
    let mut last_sent = Instant::now();
    let mut ping =
        tokio::time::interval_at(Instant::now() + limits.ping_interval, limits.ping_interval);
    let snapshot = states.borrow_and_update().clone();
    let mut outcome = send_update(&mut writer, &snapshot, &mut last_seq, true, &limits).await;

    while outcome.is_ok() {
        outcome = tokio::select! {
            changed = states.changed() => match changed {
                Err(_) => Err(Closing(close_code::GOING_AWAY, "server shutting down")),
                Ok(()) => {
                    // Coalesce: wait out the tick interval, then send whatever is newest.
                    let due = last_sent + limits.min_tick;
                    if Instant::now() < due {
                        tokio::time::sleep_until(due).await;
                    }
                    let view = states.borrow_and_update().clone();
                    last_sent = Instant::now();
                    send_update(&mut writer, &view, &mut last_seq, false, &limits).await
                }
            },
            message = control.recv() => match message {
                None => Err(Closing(1000, "")),
                Some(Control::Alive) => {
                    last_heard = Instant::now();
                    Ok(())
                }
                Some(Control::Pong(payload)) => {
                    last_heard = Instant::now();
                    write(&mut writer, Frame::pong(Payload::Owned(payload)), &limits).await
                }
                Some(Control::Resync) => {
                    last_heard = Instant::now();
                    let view = states.borrow_and_update().clone();
                    send_update(&mut writer, &view, &mut last_seq, true, &limits).await
                }
                Some(Control::Close(code)) => Err(Closing(code, "")),
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > limits.idle_timeout {
                    Err(Closing(close_code::IDLE, "idle"))
                } else {
                    write(&mut writer, Frame::new(true, OpCode::Ping, None, Payload::Borrowed(b"")), &limits).await
                }
            }
        };
    }
    if let Err(Closing(code, reason)) = outcome {
        if code == close_code::GOING_AWAY {
            let bye = ServerMessage::Bye {
                v: LIVE_PROTOCOL_VERSION,
                reason: reason.to_string(),
            };
            let _ = write(
                &mut writer,
                Frame::text(Payload::Owned(to_json(&bye))),
                &limits,
            )
            .await;
        }
        if code != close_code::TOO_SLOW {
            let _ = write(&mut writer, Frame::close(code, reason.as_bytes()), &limits).await;
        }
        tracing::debug!(%site, code, reason, "live connection closed");
    }
    reader_task.abort();
}

/// Why the writer loop ends: a close code and reason.
struct Closing(u16, &'static str);

type WsWriter = fastwebsockets::WebSocketWrite<tokio::io::WriteHalf<TokioIo<Upgraded>>>;

async fn write(
    writer: &mut WsWriter,
    frame: Frame<'_>,
    limits: &GatewayLimits,
) -> Result<(), Closing> {
    match tokio::time::timeout(limits.write_timeout, writer.write_frame(frame)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Closing(1000, "")),
        Err(_) => Err(Closing(close_code::TOO_SLOW, "too slow")),
    }
}

/// Sends a snapshot (whole feed) or a tick (feed events after `last_seq`).
async fn send_update(
    writer: &mut WsWriter,
    view: &SiteView,
    last_seq: &mut u64,
    snapshot: bool,
    limits: &GatewayLimits,
) -> Result<(), Closing> {
    let feed: Vec<FeedEvent> = view
        .feed
        .iter()
        .filter(|f| snapshot || f.seq > *last_seq)
        .cloned()
        .collect();
    if let Some(last) = view.feed.last() {
        *last_seq = last.seq;
    }
    let update = LiveUpdate {
        v: LIVE_PROTOCOL_VERSION,
        site: view.site.clone(),
        at: view.at,
        metrics: view.metrics.clone(),
        feed,
    };
    let message = if snapshot {
        ServerMessage::Snapshot(update)
    } else {
        ServerMessage::Tick(update)
    };
    write(
        writer,
        Frame::text(Payload::Owned(to_json(&message))),
        limits,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::same_origin;

    #[test]
    fn same_origin_compares_scheme_defaults_names_and_ports() {
        assert!(same_origin("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(same_origin("https://stats.example", "stats.example"));
        assert!(same_origin("https://stats.example", "stats.example:443"));
        assert!(same_origin("http://stats.example", "Stats.Example:80"));
        assert!(same_origin("http://[::1]:8080", "[::1]:8080"));
        // A proxy passing `$host` drops the port: the name decides.
        assert!(same_origin("https://stats.example:8443", "stats.example"));
        assert!(!same_origin("http://127.0.0.1:9999", "127.0.0.1:8080"));
        assert!(!same_origin("https://evil.example", "stats.example"));
        assert!(!same_origin("https://stats.example.evil", "stats.example"));
        assert!(!same_origin("null", "stats.example"));
        assert!(!same_origin("file://", "stats.example"));
    }
}
