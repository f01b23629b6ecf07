//! Everything the store-owning process serves over HTTP besides ingestion and static files:
//! the stats API and the live gateway, as one [`Handler`] ([`ProcessorHttp`]); and for a
//! `footfall processor` process, that plus its health routes ([`ProcessorService`]: ready
//! while the store takes writes, `/metrics` the pipeline's), so the processor answers health
//! exactly as the collector and standalone do — all three on `footfall_http::Health`.
//! `footfall` mounts them next to the dashboard's static files.

use std::net::SocketAddr;
use std::sync::Arc;

use footfall_http::{BoxFuture, Handler, Health, ResponseBody};
use http::{Request, Response};
use hyper::body::Incoming;

use crate::api::StatsApi;
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
}

impl ProcessorHttp {
    pub fn new(stats: StatsApi, gateway: Gateway) -> Self {
        ProcessorHttp {
            stats,
            gateway,
            sites: None,
        }
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
        _peer: SocketAddr,
    ) -> BoxFuture<'static, Response<ResponseBody>> {
        let this = self.clone();
        Box::pin(async move { ProcessorHttp::handle(&this, req).await })
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
