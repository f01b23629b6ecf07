//! Everything the store-owning process serves over HTTP besides ingestion and static files:
//! the stats API and the live gateway, as one [`Handler`] ([`ProcessorHttp`]); and for a
//! `footfall processor` process, that plus its health routes ([`ProcessorService`]: ready
//! while the store takes writes, `/metrics` the pipeline's), so the processor answers health
//! exactly as the collector and standalone do — all three on `footfall_http::Health`.
//! `footfall` mounts them next to the dashboard's static files.
//!
//! Every path of [`ProcessorHttp`] needs a credential, so the failed-authentication throttle
//! sits there, in front of all of them: a 401 from any of them counts against the client's
//! address, and a client over its allowance gets 429 before any credential is compared.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use footfall_http::client_ip::{client_ip, limit_key};
use footfall_http::{answer, BoxFuture, Handler, Health, MetricsRegistry, ResponseBody};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use ipnet::IpNet;

use crate::api::StatsApi;
use crate::auth::AuthThrottle;
use crate::live::Gateway;
use crate::pipeline::PipelineMetrics;
use crate::sites::SitesApi;
use crate::store::Store;

/// Cheap to clone.
#[derive(Clone)]
pub struct ProcessorHttp {
    stats: StatsApi,
    gateway: Gateway,
    sites: Option<SitesApi>,
    throttle: AuthThrottle,
    trusted_proxies: Vec<IpNet>,
}

impl ProcessorHttp {
    pub fn new(stats: StatsApi, gateway: Gateway) -> Self {
        ProcessorHttp {
            stats,
            gateway,
            sites: None,
            throttle: AuthThrottle::default(),
            trusted_proxies: Vec::new(),
        }
    }

    /// Proxies whose `X-Forwarded-For` names the client the throttle counts (without them,
    /// every client behind a proxy would share the proxy's allowance).
    pub fn with_trusted_proxies(mut self, proxies: Vec<IpNet>) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// Adds the failed-authentication metrics to the registry `/metrics` renders.
    pub fn register_metrics(&self, registry: &MetricsRegistry) {
        self.throttle.register_metrics(registry);
    }

    /// Serves the site registry at `/api/sites` (without it, 404).
    pub fn with_sites(mut self, sites: SitesApi) -> Self {
        self.sites = Some(sites);
        self
    }

    /// The stats API's paths (`/api/stats/...`, `/api/access`, `/api/goals`, `/api/shares`,
    /// `/api/export/events`), `/api/sites...`, `/ws` and `/api/ws-ticket`.
    pub fn owns(path: &str) -> bool {
        StatsApi::owns(path) || SitesApi::owns(path) || Gateway::owns(path)
    }

    /// Answers `req` from `peer`, throttling clients whose credentials keep failing.
    pub async fn handle_from(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<ResponseBody> {
        let client = limit_key(client_ip(peer.ip(), req.headers(), &self.trusted_proxies));
        if let Some(wait) = self.throttle.retry_after(client) {
            return throttled(wait);
        }
        let resp = self.handle(req).await;
        if resp.status() == StatusCode::UNAUTHORIZED {
            self.throttle.failed(client);
        }
        resp
    }

    pub async fn handle(&self, req: Request<Incoming>) -> Response<ResponseBody> {
        if Gateway::owns(req.uri().path()) {
            self.gateway.handle(req).await
        } else if SitesApi::owns(req.uri().path()) {
            match &self.sites {
                Some(sites) => sites.handle(req).await,
                None => footfall_http::answer::not_found(),
            }
        } else {
            self.stats.handle(req).await
        }
    }
}

impl Handler for ProcessorHttp {
    fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> BoxFuture<'static, Response<ResponseBody>> {
        let this = self.clone();
        Box::pin(async move { this.handle_from(req, peer).await })
    }
}

/// A `footfall processor` process: [`ProcessorHttp`] plus `/api/health`, `/livez`, `/readyz`
/// (ready while the store takes writes) and `/metrics` (the pipeline's). Cheap to clone.
#[derive(Clone)]
pub struct ProcessorService {
    health: Health,
    http: ProcessorHttp,
}

impl ProcessorService {
    pub fn new(http: ProcessorHttp, store: Arc<dyn Store>, metrics: &PipelineMetrics) -> Self {
        ProcessorService {
            health: Health::new(move || store.is_ready(), metrics.registry().clone()),
            http,
        }
    }

    /// The health paths and [`ProcessorHttp::owns`].
    pub fn owns(path: &str) -> bool {
        Health::owns(path) || ProcessorHttp::owns(path)
    }
}

impl Handler for ProcessorService {
    fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> BoxFuture<'static, Response<ResponseBody>> {
        if Health::owns(req.uri().path()) {
            self.health.handle(req, peer)
        } else {
            Handler::handle(&self.http, req, peer)
        }
    }
}

/// The 429 of a client that failed to authenticate too often.
fn throttled(wait: Duration) -> Response<ResponseBody> {
    answer::with_retry_after(
        answer::error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failures",
            "too many failed attempts to authenticate from this address; try again later",
            None,
        ),
        wait,
    )
}
