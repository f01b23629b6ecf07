//! The stats API: `GET /api/stats/...`, guarded by the admin token, answering the same JSON
//! whichever [`Store`] is behind it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use footfall_http::answer::{self, error};
use footfall_http::ResponseBody;
use http::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use protocol::stats::Sites;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::auth::AdminToken;
use crate::history;
use crate::query::{BreakdownQuery, QueryError, RangeQuery, TimeseriesQuery};
use crate::store::{Store, StoreError};

/// How long one stats query may take, waiting for its turn included. Past it the answer is a
/// 503 and the work is abandoned (the SQLite store interrupts its read), so no query can hold
/// a worker, a store connection or shutdown for longer.
pub const QUERY_DEADLINE: Duration = Duration::from_secs(10);
/// Stats queries computed at once. Each may read many buckets and merge them on the blocking
/// pool; more in parallel would only queue on the store and take threads from everyone.
pub const MAX_CONCURRENT_QUERIES: usize = 4;

/// The stats API service. Cheap to clone.
#[derive(Clone)]
pub struct StatsApi {
    store: Arc<dyn Store>,
    token: AdminToken,
    queries: Arc<Semaphore>,
}

impl StatsApi {
    pub fn new(store: Arc<dyn Store>, token: AdminToken) -> Self {
        StatsApi {
            store,
            token,
            queries: Arc::new(Semaphore::new(MAX_CONCURRENT_QUERIES)),
        }
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
            return unauthorized();
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return answer::method_not_allowed("GET, HEAD");
        }
        let params = query_params(req.uri().query());
        // Parameters are checked before the query waits for its turn: a bad request is refused
        // at once, however busy the store is.
        let query = match Query::parse(endpoint, &params, now_ms()) {
            Ok(Some(query)) => query,
            Ok(None) => return error(StatusCode::NOT_FOUND, "not_found", "no such endpoint", None),
            Err(e) => return bad_request(&e),
        };
        let queries = self.queries.clone();
        let answered = tokio::time::timeout(QUERY_DEADLINE, async move {
            // Never closed: the semaphore lives as long as the API.
            let _turn = queries.acquire_owned().await;
            self.answer(query).await
        })
        .await;
        answered
            .unwrap_or(Err(StoreError::TimedOut(QUERY_DEADLINE)))
            .unwrap_or_else(store_error)
    }

    async fn answer(&self, query: Query) -> Result<Response<ResponseBody>, StoreError> {
        let store = &*self.store;
        Ok(match query {
            Query::Summary(q) => json(StatusCode::OK, &history::summary(store, q).await?),
            Query::Timeseries(q) => json(StatusCode::OK, &history::timeseries(store, q).await?),
            Query::Breakdown(q) => json(StatusCode::OK, &history::breakdown(store, q).await?),
            Query::Sites => json(
                StatusCode::OK,
                &Sites {
                    sites: history::sites(store).await?,
                },
            ),
        })
    }
}

/// A stats request whose parameters passed their checks.
enum Query {
    Summary(RangeQuery),
    Timeseries(TimeseriesQuery),
    Breakdown(BreakdownQuery),
    Sites,
}

impl Query {
    /// `Ok(None)` for an endpoint that does not exist.
    fn parse(
        endpoint: &str,
        params: &BTreeMap<String, String>,
        now: i64,
    ) -> Result<Option<Query>, QueryError> {
        Ok(Some(match endpoint {
            "summary" => Query::Summary(RangeQuery::from_params(params, now)?),
            "timeseries" => Query::Timeseries(TimeseriesQuery::from_params(params, now)?),
            "breakdown" => Query::Breakdown(BreakdownQuery::from_params(params, now)?),
            "sites" => Query::Sites,
            _ => return Ok(None),
        }))
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

/// The 401 of every admin endpoint.
pub(crate) fn unauthorized() -> Response<ResponseBody> {
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
    resp
}

pub(crate) fn store_error(e: StoreError) -> Response<ResponseBody> {
    tracing::warn!(error = %e, "stats query failed");
    let (code, message) = match e {
        StoreError::TimedOut(_) => (
            "timeout",
            "the query did not finish in time; ask for a shorter range or try again later",
        ),
        _ => ("unavailable", "the store cannot answer right now"),
    };
    answer::with_retry_after(
        error(StatusCode::SERVICE_UNAVAILABLE, code, message, None),
        STORE_RETRY_AFTER,
    )
}

/// When to ask again after the store could not answer.
const STORE_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Stats are private and change every second: `answer::json` is `no-store`.
pub(crate) fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<ResponseBody> {
    answer::json(status, body)
}
