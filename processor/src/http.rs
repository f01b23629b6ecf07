//! Everything the store-owning process serves over HTTP besides ingestion and static files:
//! the stats API and the live gateway, as one [`Handler`]. `footfall` mounts it next to the
//! health routes and the dashboard's static files (`footfall_http`).

use std::net::SocketAddr;

use footfall_http::{BoxFuture, Handler, ResponseBody};
use http::{Request, Response};
use hyper::body::Incoming;

use crate::api::StatsApi;
use crate::live::Gateway;
use crate::sites::SitesApi;

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
