//! The stats API: `GET /api/stats/...`, guarded by the admin token, answering the same JSON
//! whichever [`Store`] is behind it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use footfall_http::answer::{self, error};
use footfall_http::ResponseBody;
use http::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use protocol::stats::Sites;
use serde::Serialize;

use crate::auth::AdminToken;
use crate::history;
use crate::query::{BreakdownQuery, QueryError, RangeQuery, TimeseriesQuery};
use crate::store::{Store, StoreError};

/// The stats API service. Cheap to clone.
#[derive(Clone)]
pub struct StatsApi {
    store: Arc<dyn Store>,
    token: AdminToken,
}

impl StatsApi {
    pub fn new(store: Arc<dyn Store>, token: AdminToken) -> Self {
        StatsApi { store, token }
    }

    /// Answers one request. Paths outside `/api/stats/` get a 404 in the common error shape.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<ResponseBody> {
        let path = req.uri().path();
        let Some(endpoint) = path.strip_prefix("/api/stats/") else {
            return error(StatusCode::NOT_FOUND, "not_found", "no such endpoint", None);
        };
        let auth = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !self.token.verify_header(auth) {
            let mut resp = error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send Authorization: Bearer <admin token>",
                None,
            );
            resp.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"footfall\""),
            );
            return resp;
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return answer::method_not_allowed("GET, HEAD");
        }
        let params = query_params(req.uri().query());
        let now = now_ms();
        let result = match endpoint {
            "summary" => match RangeQuery::from_params(&params, now) {
                Ok(q) => history::summary(&*self.store, q)
                    .await
                    .map(|s| json(StatusCode::OK, &s)),
                Err(e) => return bad_request(&e),
            },
            "timeseries" => match TimeseriesQuery::from_params(&params, now) {
                Ok(q) => history::timeseries(&*self.store, q)
                    .await
                    .map(|t| json(StatusCode::OK, &t)),
                Err(e) => return bad_request(&e),
            },
            "breakdown" => match BreakdownQuery::from_params(&params, now) {
                Ok(q) => history::breakdown(&*self.store, q)
                    .await
                    .map(|b| json(StatusCode::OK, &b)),
                Err(e) => return bad_request(&e),
            },
            "sites" => history::sites(&*self.store)
                .await
                .map(|sites| json(StatusCode::OK, &Sites { sites })),
            _ => return error(StatusCode::NOT_FOUND, "not_found", "no such endpoint", None),
        };
        result.unwrap_or_else(store_error)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn query_params(query: Option<&str>) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn bad_request(e: &QueryError) -> Response<ResponseBody> {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
        &e.message,
        Some(e.field),
    )
}

fn store_error(e: StoreError) -> Response<ResponseBody> {
    tracing::warn!(error = %e, "stats query failed");
    answer::with_retry_after(
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the store cannot answer right now",
            None,
        ),
        STORE_RETRY_AFTER,
    )
}

/// When to ask again after the store could not answer.
const STORE_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

/// Stats are private and change every second: `answer::json` is `no-store`.
fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<ResponseBody> {
    answer::json(status, body)
}
