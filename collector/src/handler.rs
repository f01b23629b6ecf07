//! [`Collector`]: the ingest endpoints, plus health and metrics on `footfall_http`'s shared
//! health routes, each request counted in the metrics by route.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use footfall_http::log_limit::LogLimit;
use footfall_http::{answer, client_ip, BoxFuture, Handler, Health, ResponseBody};
use http::header::ORIGIN;
use http::{Method, StatusCode};
use hyper::body::Incoming;
use hyper::{Request, Response};
use protocol::wire::{decode_batch, decode_track};
use protocol::{Event, Normalizer, RequestContext, ValidationError, WireEvent};

use crate::api::{ApiError, BatchResponse, RejectedEvent, TrackResponse};
use crate::config::{AllowedOrigins, CollectorConfig};
use crate::metrics::Metrics;
use crate::rate_limit::IpRateLimiter;
use crate::salt::{SaltCache, SaltSource};
use crate::sinks::{Sink, SinkError};
use crate::sites::Admission;
use crate::{body, cors};

/// The site of events that name none and come without an `Origin`.
pub const DEFAULT_SITE: &str = "default";

/// How often the rate limiter forgets clients whose quota has refilled.
const RATE_LIMIT_PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// The collector service. Cheap to clone; all state is shared.
#[derive(Clone)]
pub struct Collector {
    inner: Arc<Inner>,
}

struct Inner {
    config: CollectorConfig,
    sink: Arc<dyn Sink>,
    salts: SaltCache,
    limiter: IpRateLimiter,
    metrics: Metrics,
    /// `/api/health`, `/livez`, `/readyz` (the sink's readiness) and `/metrics`.
    health: Health,
}

/// Every path the collector answers; `footfall` routes the rest elsewhere.
pub const PATHS: &[&str] = &[
    "/api/track",
    "/api/batch",
    "/api/health",
    "/livez",
    "/readyz",
    "/metrics",
];

/// Routes of the collector; the label of the request metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Track,
    Batch,
    Health,
    Live,
    Ready,
    Metrics,
}

impl Route {
    fn of(path: &str) -> Option<Route> {
        Some(match path {
            "/api/track" => Route::Track,
            "/api/batch" => Route::Batch,
            "/api/health" => Route::Health,
            "/livez" => Route::Live,
            "/readyz" => Route::Ready,
            "/metrics" => Route::Metrics,
            _ => return None,
        })
    }

    fn label(self) -> &'static str {
        match self {
            Route::Track => "track",
            Route::Batch => "batch",
            Route::Health => "health",
            Route::Live => "livez",
            Route::Ready => "readyz",
            Route::Metrics => "metrics",
        }
    }

    fn is_ingest(self) -> bool {
        matches!(self, Route::Track | Route::Batch)
    }
}

fn ingest_allows(method: &Method) -> bool {
    method == Method::POST || method == Method::OPTIONS
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Collector {
    pub fn new(config: CollectorConfig, sink: Arc<dyn Sink>, salts: Arc<dyn SaltSource>) -> Self {
        let limiter = IpRateLimiter::new(config.rate_limit_per_minute);
        let metrics = Metrics::new();
        metrics.report_sink_ready(sink.is_ready());
        let health = {
            let (sink, gauge) = (sink.clone(), metrics.clone());
            Health::new(
                move || {
                    let ready = sink.is_ready();
                    gauge.report_sink_ready(ready);
                    ready
                },
                metrics.registry().clone(),
            )
        };
        let inner = Arc::new(Inner {
            config,
            sink,
            salts: SaltCache::new(salts),
            limiter,
            metrics,
            health,
        });
        spawn_housekeeping(&inner);
        Collector { inner }
    }

    /// Whether `path` is the collector's (see [`PATHS`]).
    pub fn owns(path: &str) -> bool {
        PATHS.contains(&path)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Flushes the sink: the last step of graceful shutdown.
    pub async fn flush(&self) -> Result<(), SinkError> {
        self.inner.sink.flush().await
    }

    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<ResponseBody> {
        let started = Instant::now();
        let Some(route) = Route::of(req.uri().path()) else {
            return answer::not_found();
        };
        let resp = if route.is_ingest() {
            self.ingest_route(route, req, peer).await
        } else {
            self.inner
                .health
                .answer(req.method(), req.uri().path())
                .unwrap_or_else(answer::not_found)
        };
        self.inner
            .metrics
            .report_request(route.label(), resp.status().as_u16(), started.elapsed());
        resp
    }

    async fn ingest_route(
        &self,
        route: Route,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<ResponseBody> {
        let allowed = &self.inner.config.allowed_origins;
        // A reference-counted handle on the header's bytes, not a copy: it outlives `req`,
        // which `ingest` consumes.
        let origin_header = req.headers().get(ORIGIN).cloned();
        let origin = origin_header.as_ref().and_then(|v| v.to_str().ok());
        let mut resp = if !ingest_allows(req.method()) {
            ApiError::MethodNotAllowed {
                allow: "POST, OPTIONS",
            }
            .into_response()
        } else if req.method() == Method::OPTIONS {
            cors::preflight(allowed, origin)
        } else {
            let kind = match route {
                Route::Track => Ingest::Track,
                _ => Ingest::Batch,
            };
            self.ingest(req, peer, origin, kind)
                .await
                .unwrap_or_else(ApiError::into_response)
        };
        cors::decorate(allowed, origin, resp.headers_mut());
        resp
    }

    fn admit(&self, ip: std::net::IpAddr) -> Result<(), ApiError> {
        let inner = &self.inner;
        inner
            .limiter
            .check(client_ip::limit_key(ip))
            .map_err(|retry_after| {
                inner.metrics.report_rate_limited();
                ApiError::RateLimited { retry_after }
            })
    }

    /// Refuses events for sites that are not registered, before anything is computed or
    /// kept for them (see [`crate::sites`]).
    fn admit_site(&self, site: &str) -> Result<(), ApiError> {
        let site = protocol::validate::site(site)?;
        match self.inner.config.sites.admit(&site) {
            Admission::Accept => Ok(()),
            Admission::Unknown => {
                self.inner.metrics.report_rejected("unknown_site");
                Err(ApiError::UnknownSite(site))
            }
            Admission::NotReady => Err(ApiError::Unavailable {
                retry_after: Duration::from_secs(5),
            }),
        }
    }

    async fn ingest(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        origin: Option<&str>,
        kind: Ingest,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let inner = &self.inner;
        let config = &inner.config;
        let received_at = now_ms();
        let ip = client_ip::client_ip(peer.ip(), req.headers(), &config.trusted_proxies);
        self.admit(ip)?;
        if !cors::origin_allowed(&config.allowed_origins, origin) {
            return Err(ApiError::OriginNotAllowed(origin.unwrap_or("").to_string()));
        }
        body::check_content_type(req.headers())?;
        let limit = match kind {
            Ingest::Track => config.track_body_limit_bytes,
            Ingest::Batch => config.batch_body_limit_bytes,
        };
        let (parts, incoming) = req.into_parts();
        let bytes = tokio::time::timeout(
            config.request_timeout,
            body::read(
                &parts.headers,
                incoming,
                limit,
                config.decompressed_limit_bytes,
            ),
        )
        .await
        .map_err(|_| ApiError::Timeout)??;

        let user_agent = parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        let (site, sent_at, events) = match kind {
            Ingest::Track => {
                let event = decode_track(&bytes)?;
                let site = event.site.clone();
                (site, None, vec![Ok(event)])
            }
            Ingest::Batch => {
                let batch = decode_batch(&bytes)?;
                (batch.site, batch.sent_at, batch.events)
            }
        };
        let site = site
            .or_else(|| origin.and_then(origin_host))
            .unwrap_or_else(|| DEFAULT_SITE.to_string());
        // Only an allow-list bound to sites needs the site's canonical (lower-case) form here.
        if matches!(config.allowed_origins, AllowedOrigins::List(_))
            && !cors::origin_allowed_for_site(
                &config.allowed_origins,
                origin,
                &site.to_ascii_lowercase(),
            )
        {
            return Err(ApiError::OriginNotAllowed(origin.unwrap_or("").to_string()));
        }
        self.admit_site(&site)?;
        let salt = inner.salts.get(received_at).await.map_err(|e| {
            static NO_SALT: LogLimit = LogLimit::new(Duration::from_secs(60));
            if let Some(suppressed) = NO_SALT.allow() {
                tracing::error!(error = %e, suppressed, "no visitor salt; refusing events");
            }
            ApiError::Unavailable {
                retry_after: Duration::from_secs(5),
            }
        })?;
        let ctx = RequestContext {
            site: &site,
            received_at,
            sent_at,
            client_ip: ip,
            user_agent,
            salt: &salt,
        };
        let mut outcome = normalize_all(events, &ctx);
        if !config.store_user_ids {
            for event in &mut outcome.accepted {
                if let Some(user) = event.user_id.as_mut() {
                    *user = protocol::visitor::user_id_hash(&salt, &event.site, user);
                }
            }
        }
        // One lookup per request: every event of it comes from the same address. A place
        // found by address beats the time zone's country; the address goes no further.
        if let Some(place) = config.geoip.as_ref().and_then(|g| g.locate(ip)) {
            for e in &mut outcome.accepted {
                if place.country.is_some() {
                    e.country.clone_from(&place.country);
                }
                e.region.clone_from(&place.region);
                e.city.clone_from(&place.city);
            }
        }
        for r in &outcome.rejected {
            inner.metrics.report_rejected(r.code);
        }
        if outcome.filtered > 0 {
            inner.metrics.report_filtered("bot", outcome.filtered);
        }
        let accepted = outcome.accepted.len();
        // Only a request in which nothing was usable is a 400; otherwise the good events are
        // stored and the bad ones listed in the 202.
        if accepted == 0 && outcome.filtered == 0 {
            if let (Some(first), Some(at)) = (outcome.first_error, outcome.rejected.first()) {
                return Err(ApiError::Invalid(match kind {
                    Ingest::Track => first,
                    Ingest::Batch => first.in_batch(at.index),
                }));
            }
        }
        if accepted > 0 {
            self.deliver(outcome.accepted).await?;
        }
        Ok(match kind {
            Ingest::Track => answer::json(
                StatusCode::OK,
                &TrackResponse {
                    success: true,
                    message: "Event tracked successfully",
                },
            ),
            Ingest::Batch => answer::json(
                StatusCode::ACCEPTED,
                &BatchResponse {
                    success: true,
                    accepted,
                    filtered: outcome.filtered,
                    rejected: outcome.rejected,
                },
            ),
        })
    }

    /// Hands events to the sink and waits for its durability promise, within the request
    /// timeout. A timeout is a 503: the client retries, and ids make the retry harmless.
    async fn deliver(&self, events: Vec<Event>) -> Result<(), ApiError> {
        let inner = &self.inner;
        let n = events.len();
        let started = Instant::now();
        let result =
            tokio::time::timeout(inner.config.request_timeout, inner.sink.send_batch(events))
                .await
                .unwrap_or(Err(SinkError::Timeout));
        let kind = result.as_ref().err().map(|e| match e {
            SinkError::Overloaded => "overloaded",
            SinkError::Unavailable(_) => "unavailable",
            SinkError::Timeout => "timeout",
        });
        inner.metrics.report_sink(started.elapsed(), kind);
        match result {
            Ok(()) => {
                inner.metrics.report_accepted(n);
                Ok(())
            }
            Err(e) => {
                // Once per request while the next stage is down: one line a minute says it.
                static REFUSED: LogLimit = LogLimit::new(Duration::from_secs(60));
                if let Some(suppressed) = REFUSED.allow() {
                    tracing::warn!(error = %e, events = n, suppressed, "sink refused a batch; answering 503");
                }
                Err(e.into())
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Ingest {
    Track,
    Batch,
}

struct Normalized {
    accepted: Vec<Event>,
    rejected: Vec<RejectedEvent>,
    first_error: Option<protocol::ValidationError>,
    filtered: usize,
}

/// Normalises each decoded event; events that did not decode are refused like invalid ones.
fn normalize_all(
    events: Vec<Result<WireEvent, ValidationError>>,
    ctx: &RequestContext<'_>,
) -> Normalized {
    let mut out = Normalized {
        accepted: Vec::with_capacity(events.len()),
        rejected: Vec::new(),
        first_error: None,
        filtered: 0,
    };
    let normalizer = Normalizer::new(*ctx);
    for (index, wire) in events.into_iter().enumerate() {
        match wire.and_then(|wire| normalizer.normalize(wire)) {
            Ok(Some(event)) => out.accepted.push(event),
            Ok(None) => out.filtered += 1,
            Err(e) => {
                out.rejected.push(RejectedEvent {
                    index,
                    code: e.code,
                    field: e.field.clone(),
                    message: e.message.clone(),
                });
                out.first_error.get_or_insert(e);
            }
        }
    }
    out
}

/// Forgets rate-limiter clients whose quota has refilled, once a minute, on a task of its
/// own: that housekeeping walks every client, and no request should wait for it. The task
/// holds the collector weakly and ends with it. (Built outside a runtime, as some tests do,
/// the collector has no housekeeping; its limiter then only grows with distinct clients.)
fn spawn_housekeeping(inner: &Arc<Inner>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let inner = Arc::downgrade(inner);
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(RATE_LIMIT_PURGE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(inner) = inner.upgrade() else {
                return;
            };
            inner.limiter.purge();
        }
    });
}

/// `https://www.example.com:8443` → `www.example.com`.
fn origin_host(origin: &str) -> Option<String> {
    let rest = origin.split_once("://")?.1;
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => rest.split(':').next()?,
    };
    (!host.is_empty() && host != "null").then(|| host.to_ascii_lowercase())
}

impl Handler for Collector {
    fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> BoxFuture<'static, Response<ResponseBody>> {
        let this = self.clone();
        Box::pin(async move { Collector::handle(&this, req, peer).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_hosts() {
        assert_eq!(
            origin_host("https://Example.com").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            origin_host("http://localhost:3000").as_deref(),
            Some("localhost")
        );
        assert_eq!(origin_host("http://[::1]:3000").as_deref(), Some("::1"));
        assert_eq!(origin_host("null"), None);
        assert_eq!(origin_host("file://"), None);
    }

    #[test]
    fn routes() {
        assert_eq!(Route::of("/api/track"), Some(Route::Track));
        assert_eq!(Route::of("/demo/a.html"), None);
        assert_eq!(Route::of("/api/stats/summary"), None);
        assert!(PATHS.iter().all(|p| Route::of(p).is_some()));
        assert!(ingest_allows(&Method::OPTIONS));
        assert!(!ingest_allows(&Method::GET));
    }
}
