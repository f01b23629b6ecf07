//! Everything the store-owning process serves over HTTP besides ingestion: the stats API and
//! the live gateway (and, as it lands, the dashboard).

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::api::StatsApi;
use crate::live::Gateway;

#[derive(Clone)]
pub struct ProcessorHttp {
    stats: StatsApi,
    gateway: Gateway,
}

impl ProcessorHttp {
    pub fn new(stats: StatsApi, gateway: Gateway) -> Self {
        ProcessorHttp { stats, gateway }
    }

    pub async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if Gateway::owns(req.uri().path()) {
            self.gateway.handle(req).await
        } else {
            self.stats.handle(req).await
        }
    }
}
