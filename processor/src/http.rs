//! Everything the store-owning process serves over HTTP besides ingestion: the stats API,
//! the live gateway and the dashboard's static files.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::api::StatsApi;
use crate::dashboard::Dashboard;
use crate::live::Gateway;
use crate::sites::SitesApi;

#[derive(Clone)]
pub struct ProcessorHttp {
    stats: StatsApi,
    gateway: Gateway,
    dashboard: Dashboard,
    sites: Option<SitesApi>,
}

impl ProcessorHttp {
    /// Without [`with_assets_dir`](Self::with_assets_dir), `/dashboard/` answers 404.
    pub fn new(stats: StatsApi, gateway: Gateway) -> Self {
        ProcessorHttp {
            stats,
            gateway,
            dashboard: Dashboard::default(),
            sites: None,
        }
    }

    /// Serves the site registry at `/api/sites` (without it, 404).
    pub fn with_sites(mut self, sites: SitesApi) -> Self {
        self.sites = Some(sites);
        self
    }

    /// Serves the dashboard from `<assets_dir>/dashboard/` (as `cargo xtask dist` builds it).
    pub fn with_assets_dir(mut self, assets_dir: &std::path::Path) -> Self {
        self.dashboard = Dashboard::new(assets_dir);
        self
    }

    pub async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if Dashboard::owns(req.uri().path()) {
            self.dashboard.handle(&req).await
        } else if Gateway::owns(req.uri().path()) {
            self.gateway.handle(req).await
        } else if SitesApi::owns(req.uri().path()) {
            match &self.sites {
                Some(sites) => sites.handle(req).await,
                None => crate::api::error(
                    http::StatusCode::NOT_FOUND,
                    "not_found",
                    "no such endpoint",
                    None,
                ),
            }
        } else {
            self.stats.handle(req).await
        }
    }
}
