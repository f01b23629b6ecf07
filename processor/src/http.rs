//! Everything the store-owning process serves over HTTP besides ingestion: the stats API,
//! the live gateway and the dashboard's static files.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::api::StatsApi;
use crate::dashboard::Dashboard;
use crate::live::Gateway;

#[derive(Clone)]
pub struct ProcessorHttp {
    stats: StatsApi,
    gateway: Gateway,
    dashboard: Dashboard,
}

impl ProcessorHttp {
    /// Without [`with_assets_dir`](Self::with_assets_dir), `/dashboard/` answers 404.
    pub fn new(stats: StatsApi, gateway: Gateway) -> Self {
        ProcessorHttp {
            stats,
            gateway,
            dashboard: Dashboard::default(),
        }
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
        } else {
            self.stats.handle(req).await
        }
    }
}
