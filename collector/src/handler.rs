//! [`Collector`]: routing, the ingest endpoints, health, metrics and assets.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ORIGIN};
use http::{HeaderMap, Method, StatusCode};
use hyper::body::Incoming;
use hyper::{Request, Response};
use protocol::visitor::day_of;
use protocol::wire::{decode_batch, decode_track};
use protocol::{Event, Normalizer, RequestContext, WireEvent};

use crate::api::{
    json_response, ApiError, BatchResponse, HealthResponse, RejectedEvent, TrackResponse,
};
use crate::config::CollectorConfig;
use crate::metrics::Metrics;
use crate::rate_limit::IpRateLimiter;
use crate::salt::{SaltCache, SaltSource};
use crate::sinks::{Sink, SinkError};
use crate::sites::Admission;
use crate::{assets, body, client_ip, cors, BoxFuture, Handler, ResponseBody};

/// The site of events that name none and come without an `Origin`.
pub const DEFAULT_SITE: &str = "default";

const RATE_LIMIT_PURGE_INTERVAL_MS: i64 = 60_000;

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
    last_purge_ms: AtomicI64,
    metrics: Metrics,
    /// Requests for paths the collector does not own (standalone mode: the stats API and
    /// the dashboard).
    fallback: Option<Arc<dyn Handler>>,
}

/// Routes of the collector; the label of the request metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Track,
    Batch,
    Health,
    Live,
    Ready,
    Metrics,
    Asset,
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
            "/footfall.js" | "/footfall.wasm" | "/demo" => Route::Asset,
            p if p.starts_with("/demo/") => Route::Asset,
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
            Route::Asset => "asset",
        }
    }

    fn allowed_methods(self) -> &'static str {
        match self {
            Route::Track | Route::Batch => "POST, OPTIONS",
            _ => "GET, HEAD",
        }
    }

    fn allows(self, method: &Method) -> bool {
        match self {
            Route::Track | Route::Batch => method == Method::POST || method == Method::OPTIONS,
            _ => method == Method::GET || method == Method::HEAD,
        }
    }
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
        Collector {
            inner: Arc::new(Inner {
                config,
                sink,
                salts: SaltCache::new(salts),
                limiter,
                last_purge_ms: AtomicI64::new(now_ms()),
                metrics,
                fallback: None,
            }),
        }
    }

    /// Serves paths the collector does not own with `fallback` instead of a 404.
    /// Must be called before the collector is cloned.
    pub fn with_fallback(mut self, fallback: Arc<dyn Handler>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.fallback = Some(fallback);
        }
        self
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
        let path = req.uri().path().to_string();
        let Some(route) = Route::of(&path) else {
            return match &self.inner.fallback {
                Some(fallback) => with_security_headers(fallback.handle(req, peer).await),
                None => with_security_headers(ApiError::NotFound.into_response()),
            };
        };
        let origin = req
            .headers()
            .get(ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let resp = if !route.allows(req.method()) {
            ApiError::MethodNotAllowed {
                allow: route.allowed_methods(),
            }
            .into_response()
        } else {
            self.route(route, req, peer, origin.as_deref())
                .await
                .unwrap_or_else(ApiError::into_response)
        };
        let mut resp = with_security_headers(resp);
        if matches!(route, Route::Track | Route::Batch) {
            cors::decorate(
                &self.inner.config.allowed_origins,
                origin.as_deref(),
                resp.headers_mut(),
            );
        }
        self.inner
            .metrics
            .report_request(route.label(), resp.status().as_u16(), started.elapsed());
        resp
    }

    async fn route(
        &self,
        route: Route,
        req: Request<Incoming>,
        peer: SocketAddr,
        origin: Option<&str>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let inner = &self.inner;
        match route {
            Route::Track | Route::Batch if req.method() == Method::OPTIONS => {
                Ok(cors::preflight(&inner.config.allowed_origins, origin))
            }
            Route::Track => self.ingest(req, peer, origin, Ingest::Track).await,
            Route::Batch => self.ingest(req, peer, origin, Ingest::Batch).await,
            Route::Health => Ok(no_store(json_response(
                StatusCode::OK,
                &HealthResponse {
                    success: true,
                    status: "healthy",
                    timestamp: protocol::time::format_rfc3339_millis(now_ms()),
                },
            ))),
            Route::Live => Ok(no_store(json_response(
                StatusCode::OK,
                &serde_json::json!({"success": true, "status": "live"}),
            ))),
            Route::Ready => {
                let ready = inner.sink.is_ready();
                inner.metrics.report_sink_ready(ready);
                let (status, word) = if ready {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
                };
                Ok(no_store(json_response(
                    status,
                    &serde_json::json!({"success": ready, "status": word}),
                )))
            }
            Route::Metrics => {
                inner.metrics.report_sink_ready(inner.sink.is_ready());
                let mut resp =
                    Response::new(ResponseBody::new(Bytes::from(inner.metrics.render())));
                resp.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                Ok(no_store(resp))
            }
            Route::Asset => {
                let dir = inner.config.assets_dir.as_ref().ok_or(ApiError::NotFound)?;
                let asset = assets::resolve(dir, req.uri().path()).ok_or(ApiError::NotFound)?;
                assets::serve(asset, req.method(), req.headers()).await
            }
        }
    }

    fn admit(&self, ip: std::net::IpAddr) -> Result<(), ApiError> {
        let inner = &self.inner;
        let now = now_ms();
        let last = inner.last_purge_ms.load(Ordering::Relaxed);
        if now - last > RATE_LIMIT_PURGE_INTERVAL_MS
            && inner
                .last_purge_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            inner.limiter.purge();
        }
        inner.limiter.check(ip).map_err(|retry_after| {
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
        let origin_site = origin.and_then(origin_host);
        let (site, sent_at, events) = match kind {
            Ingest::Track => {
                let event = decode_track(&bytes)?;
                let site = event.site.clone();
                (site, None, vec![event])
            }
            Ingest::Batch => {
                let batch = decode_batch(&bytes)?;
                (batch.site, batch.sent_at, batch.events)
            }
        };
        let site = site
            .or(origin_site)
            .unwrap_or_else(|| DEFAULT_SITE.to_string());
        let site_key = site.to_ascii_lowercase();
        if !cors::origin_allowed_for_site(&config.allowed_origins, origin, &site_key) {
            return Err(ApiError::OriginNotAllowed(origin.unwrap_or("").to_string()));
        }
        self.admit_site(&site)?;
        let salt = inner.salts.get(day_of(received_at)).await.map_err(|e| {
            tracing::error!(error = %e, "no visitor salt; refusing events");
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
        let outcome = normalize_all(events, &ctx);
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
            Ingest::Track => json_response(
                StatusCode::OK,
                &TrackResponse {
                    success: true,
                    message: "Event tracked successfully",
                },
            ),
            Ingest::Batch => json_response(
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
                tracing::warn!(error = %e, events = n, "sink refused a batch; answering 503");
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

fn normalize_all(events: Vec<WireEvent>, ctx: &RequestContext<'_>) -> Normalized {
    let mut out = Normalized {
        accepted: Vec::with_capacity(events.len()),
        rejected: Vec::new(),
        first_error: None,
        filtered: 0,
    };
    let normalizer = Normalizer::new(*ctx);
    for (index, wire) in events.into_iter().enumerate() {
        match normalizer.normalize(wire) {
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

/// `https://www.example.com:8443` → `www.example.com`.
fn origin_host(origin: &str) -> Option<String> {
    let rest = origin.split_once("://")?.1;
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => rest.split(':').next()?,
    };
    (!host.is_empty() && host != "null").then(|| host.to_ascii_lowercase())
}

fn no_store(mut resp: Response<ResponseBody>) -> Response<ResponseBody> {
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Security headers on every response. JSON answers also get a CSP that forbids everything:
/// they are data, never a document.
fn with_security_headers(mut resp: Response<ResponseBody>) -> Response<ResponseBody> {
    let h: &mut HeaderMap = resp.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.entry("x-frame-options")
        .or_insert(HeaderValue::from_static("DENY"));
    h.entry("referrer-policy")
        .or_insert(HeaderValue::from_static("no-referrer"));
    let is_json = h
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        h.entry(CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(
                "default-src 'none'; frame-ancestors 'none'",
            ));
    }
    resp
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
        assert_eq!(Route::of("/demo/a.html"), Some(Route::Asset));
        assert_eq!(Route::of("/api/stats/summary"), None);
        assert!(Route::Track.allows(&Method::OPTIONS));
        assert!(!Route::Track.allows(&Method::GET));
        assert!(!Route::Health.allows(&Method::POST));
    }
}
