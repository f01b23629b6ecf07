//! Health answers, the same in every mode:
//!
//! | path | answer |
//! |---|---|
//! | `GET /api/health` | `{"success":true,"status":"healthy","timestamp":"<RFC 3339>"}` |
//! | `GET /livez` | `{"success":true,"status":"live"}`: the process answers |
//! | `GET /readyz` | `{"success":true,"status":"ready"}`, or 503 `{"success":false,"status":"unavailable"}` when the next stage cannot take work |
//! | `GET /metrics` | Prometheus text format |
//!
//! All `no-store`. Liveness never depends on the next stage (a broker outage must not get
//! the process restarted); readiness does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, StatusCode};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde::Serialize;

use crate::answer::{self, NO_STORE};
use crate::metrics::{MetricsRegistry, TEXT_FORMAT};
use crate::{BoxFuture, Handler, ResponseBody};

/// The paths [`Health`] answers.
pub const PATHS: &[&str] = &["/api/health", "/livez", "/readyz", "/metrics"];

#[derive(Serialize)]
struct HealthBody {
    success: bool,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
}

/// `GET /api/health`.
pub fn healthy() -> Response<ResponseBody> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    answer::json(
        StatusCode::OK,
        &HealthBody {
            success: true,
            status: "healthy",
            timestamp: Some(protocol::time::format_rfc3339_millis(now)),
        },
    )
}

/// `GET /livez`.
pub fn live() -> Response<ResponseBody> {
    answer::json(
        StatusCode::OK,
        &HealthBody {
            success: true,
            status: "live",
            timestamp: None,
        },
    )
}

/// `GET /readyz`: 200 when `ready`, else 503.
pub fn readiness(ready: bool) -> Response<ResponseBody> {
    let (status, word) = if ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    answer::json(
        status,
        &HealthBody {
            success: ready,
            status: word,
            timestamp: None,
        },
    )
}

/// `GET /metrics`.
pub fn metrics_text(registry: &MetricsRegistry) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::new(Bytes::from(registry.render())));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    resp
}

/// The four health routes as one handler. Cheap to clone.
#[derive(Clone)]
pub struct Health {
    ready: Arc<dyn Fn() -> bool + Send + Sync>,
    metrics: MetricsRegistry,
}

impl Health {
    /// `ready` says whether the next stage takes work (the sink, the store). It is also
    /// called before `/metrics` is rendered, so gauges it updates are fresh in every scrape.
    pub fn new(ready: impl Fn() -> bool + Send + Sync + 'static, metrics: MetricsRegistry) -> Self {
        Health {
            ready: Arc::new(ready),
            metrics,
        }
    }

    pub fn owns(path: &str) -> bool {
        PATHS.contains(&path)
    }

    /// The answer for `path`, or `None` when it is not a health path.
    pub fn answer(&self, method: &Method, path: &str) -> Option<Response<ResponseBody>> {
        if !Self::owns(path) {
            return None;
        }
        if method != Method::GET && method != Method::HEAD {
            return Some(answer::method_not_allowed("GET, HEAD"));
        }
        Some(match path {
            "/api/health" => healthy(),
            "/livez" => live(),
            "/readyz" => readiness((self.ready)()),
            _ => {
                (self.ready)();
                metrics_text(&self.metrics)
            }
        })
    }
}

impl Handler for Health {
    fn handle(
        &self,
        req: Request<Incoming>,
        _peer: SocketAddr,
    ) -> BoxFuture<'static, Response<ResponseBody>> {
        let resp = self
            .answer(req.method(), req.uri().path())
            .unwrap_or_else(answer::not_found);
        Box::pin(async move { resp })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn readiness_follows_the_probe_and_liveness_does_not() {
        let up = Arc::new(AtomicBool::new(true));
        let probe = up.clone();
        let health = Health::new(
            move || probe.load(Ordering::Relaxed),
            MetricsRegistry::new(),
        );
        let status = |p| health.answer(&Method::GET, p).map(|r| r.status());
        assert_eq!(status("/readyz"), Some(StatusCode::OK));
        up.store(false, Ordering::Relaxed);
        assert_eq!(status("/readyz"), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(status("/livez"), Some(StatusCode::OK));
        assert_eq!(status("/api/health"), Some(StatusCode::OK));
        assert_eq!(status("/metrics"), Some(StatusCode::OK));
        assert_eq!(status("/other"), None);
        assert_eq!(
            health.answer(&Method::POST, "/livez").map(|r| r.status()),
            Some(StatusCode::METHOD_NOT_ALLOWED)
        );
    }
}
