//! The stats API: `GET /api/stats/...` (JSON, or CSV for panels), `GET /api/access`, and the
//! admin's `/api/goals` and `/api/shares`; answering the same JSON whichever [`Store`] is
//! behind it. The admin token may do everything; a share link's token reads the stats of its
//! own site and nothing else.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use footfall_http::answer::{self, error};
use footfall_http::log_limit::LogLimit;
use footfall_http::ResponseBody;
use futures_util::stream::{self, StreamExt};
use http::header::{
    HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, WWW_AUTHENTICATE,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use protocol::stats::{Access, Goals, NewGoal, NewShareLink, Role, ShareLinks, Sites};
use serde::Serialize;
use tokio::sync::Semaphore;

pub use crate::auth::Credential;
use crate::auth::{AdminToken, Credentials};
use crate::export::EventsFormat;
use crate::query::{BreakdownQuery, QueryError, RangeQuery, TimeseriesQuery};
use crate::settings::{self, SettingsError};
use crate::store::{RecordKind, Store, StoreError};
use crate::{export, history};

/// How long one stats query may take, waiting for its turn included. Past it the answer is a
/// 503 and the work is abandoned (the SQLite store interrupts its read), so no query can hold
/// a worker, a store connection or shutdown for longer.
pub const QUERY_DEADLINE: Duration = Duration::from_secs(10);
/// Stats queries computed at once. Each may read many buckets and merge them on the blocking
/// pool; more in parallel would only queue on the store and take threads from everyone.
pub const MAX_CONCURRENT_QUERIES: usize = 4;
/// Longest a question waits for the store to take the events acknowledged before it (see
/// [`Freshness`]); past it, it is answered from what is stored.
pub const FRESHNESS_WAIT: Duration = Duration::from_secs(2);

/// What the stats API waits for before it reads, so that an answer holds every event that was
/// acknowledged before the question: standalone's store takes events from its journal a
/// moment after the collector's 2xx. (Distributed mode has no such wait: Kafka consumers lag
/// by design, and its dashboards are fed live.)
pub trait Freshness: Send + Sync + 'static {
    /// Resolves once the store has what was acknowledged when it was called.
    fn caught_up(&self) -> crate::BoxFuture<'_, ()>;
}

/// The stats API service. Cheap to clone.
#[derive(Clone)]
pub struct StatsApi {
    store: Arc<dyn Store>,
    credentials: Credentials,
    queries: Arc<Semaphore>,
    freshness: Option<Arc<dyn Freshness>>,
}

/// The raw-event export.
const EXPORT_EVENTS: &str = "/api/export/events";

/// Largest JSON body of a `POST` (goals, share links).
const MAX_JSON_BODY: usize = 16 * 1024;

type Reply = Response<ResponseBody>;

impl StatsApi {
    pub fn new(store: Arc<dyn Store>, token: AdminToken) -> Self {
        let credentials = Credentials::new(token, store.clone());
        StatsApi {
            store,
            credentials,
            queries: Arc::new(Semaphore::new(MAX_CONCURRENT_QUERIES)),
            freshness: None,
        }
    }

    /// Answers wait (up to [`FRESHNESS_WAIT`]) for `freshness` before reading.
    #[must_use]
    pub fn with_freshness(mut self, freshness: Arc<dyn Freshness>) -> Self {
        self.freshness = Some(freshness);
        self
    }

    /// Waits, at most [`FRESHNESS_WAIT`], until the store has what was acknowledged so far.
    async fn caught_up(&self) {
        if let Some(freshness) = &self.freshness {
            let _ = tokio::time::timeout(FRESHNESS_WAIT, freshness.caught_up()).await;
        }
    }

    /// The paths this API answers: `/api/stats/...`, `/api/access`, `/api/export/events`,
    /// `/api/goals[/ID]` and `/api/shares[/ID]`.
    pub fn owns(path: &str) -> bool {
        path.starts_with("/api/stats/")
            || path == "/api/access"
            || path == EXPORT_EVENTS
            || ["/api/goals", "/api/shares"].iter().any(|prefix| {
                path.strip_prefix(prefix)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
    }

    /// Who the `Authorization` header is: the admin token, a live share link, or nobody.
    ///
    /// # Errors
    /// When the store cannot tell whether a share link exists.
    pub async fn credential(&self, header: Option<&str>) -> Result<Option<Credential>, StoreError> {
        self.credentials.resolve(header).await
    }

    /// The credentials this API accepts, for the live gateway to accept the same.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Answers one request under `/api/` (stats, access, goals, share links); other paths get
    /// a 404 in the common error shape.
    pub async fn handle<B>(&self, req: Request<B>) -> Reply
    where
        B: hyper::body::Body + Send,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = req.uri().path().to_string();
        let auth = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let who = match self.credential(auth.as_deref()).await {
            Ok(Some(who)) => who,
            Ok(None) => return unauthorized(),
            Err(e) => return store_error(e),
        };
        let method = req.method().clone();
        let raw_query = req.uri().query().map(str::to_string);
        let params = query_params(raw_query.as_deref());
        let now = now_ms();
        if path == "/api/access" {
            let access = match &who {
                Credential::Admin => Access {
                    role: Role::Admin,
                    site: None,
                },
                Credential::Share { site } => Access {
                    role: Role::Share,
                    site: Some(site.clone()),
                },
            };
            return json(StatusCode::OK, &access);
        }
        if let Some(endpoint) = path.strip_prefix("/api/stats/") {
            if method != Method::GET && method != Method::HEAD {
                return answer::method_not_allowed("GET, HEAD");
            }
            return self
                .stats(endpoint, &who, &params, raw_query.as_deref(), now)
                .await;
        }
        if path == EXPORT_EVENTS {
            if who != Credential::Admin {
                return forbidden("a share link reads stats only");
            }
            if method != Method::GET && method != Method::HEAD {
                return answer::method_not_allowed("GET, HEAD");
            }
            return self.export_events(&params, raw_query.as_deref(), now).await;
        }
        // Everything below manages the site's settings: the admin's alone.
        let (collection, id) = match path.strip_prefix("/api/goals") {
            Some(rest) => ("goals", rest),
            None => match path.strip_prefix("/api/shares") {
                Some(rest) => ("shares", rest),
                None => return error(StatusCode::NOT_FOUND, "not_found", "no such endpoint", None),
            },
        };
        if who != Credential::Admin {
            return forbidden("a share link reads stats only");
        }
        let id = match id {
            "" => None,
            rest => match rest.strip_prefix('/') {
                Some(id) if !id.is_empty() && !id.contains('/') => Some(id.to_string()),
                _ => return error(StatusCode::NOT_FOUND, "not_found", "no such endpoint", None),
            },
        };
        let result = match (collection, id, method) {
            ("goals", None, Method::GET) => match params.get("site") {
                Some(site) => settings::goals(&*self.store, &site.trim().to_ascii_lowercase())
                    .await
                    .map(|goals| json(StatusCode::OK, &Goals { goals })),
                None => return missing("site"),
            },
            ("goals", None, Method::POST) => {
                let new: NewGoal = match read_json(req).await {
                    Ok(v) => v,
                    Err(resp) => return resp,
                };
                return match settings::add_goal(&*self.store, new, now).await {
                    Ok((goal, true)) => json(StatusCode::CREATED, &goal),
                    Ok((goal, false)) => json(StatusCode::OK, &goal),
                    Err(e) => settings_error(e),
                };
            }
            ("goals", Some(id), Method::DELETE) => match params.get("site") {
                Some(site) => self
                    .store
                    .delete_record(RecordKind::Goal, site.trim().to_ascii_lowercase(), id)
                    .await
                    .map(deleted),
                None => return missing("site"),
            },
            ("shares", None, Method::GET) => {
                let site = params.get("site").map(|s| s.trim().to_ascii_lowercase());
                settings::shares(
                    &*self.store,
                    self.credentials.share_signer(),
                    site.as_deref(),
                )
                .await
                .map(|links| json(StatusCode::OK, &ShareLinks { links }))
            }
            ("shares", None, Method::POST) => {
                let new: NewShareLink = match read_json(req).await {
                    Ok(v) => v,
                    Err(resp) => return resp,
                };
                return match settings::add_share(
                    &*self.store,
                    self.credentials.share_signer(),
                    new,
                    now,
                )
                .await
                {
                    Ok(link) => json(StatusCode::CREATED, &link),
                    Err(e) => settings_error(e),
                };
            }
            ("shares", Some(id), Method::DELETE) => {
                settings::delete_share(&*self.store, &id).await.map(deleted)
            }
            (_, None, _) => return answer::method_not_allowed("GET, POST"),
            (_, Some(_), _) => return answer::method_not_allowed("DELETE"),
        };
        result.unwrap_or_else(store_error)
    }

    /// `GET /api/export/events?site&from&to&format=ndjson|json`: the site's raw events,
    /// streamed (see [`export::events`]). The first page is read before answering, so a store
    /// that cannot answer is a 503, not a 200 cut short.
    async fn export_events(
        &self,
        params: &BTreeMap<String, String>,
        raw_query: Option<&str>,
        now: i64,
    ) -> Reply {
        let q = match RangeQuery::from_params(params, now) {
            Ok(q) => q,
            Err(e) => return bad_request(&e),
        };
        if raw_query.is_some_and(|raw| {
            url::form_urlencoded::parse(raw.as_bytes()).any(|(k, _)| k == "filter")
        }) {
            return bad_request(&QueryError {
                field: "filter",
                message: "the raw-event export takes no filters: it is every event of the range"
                    .into(),
            });
        }
        let format = match params.get("format").map(|f| f.trim()) {
            None | Some("") => EventsFormat::Ndjson,
            Some(name) => match EventsFormat::from_name(name) {
                Some(f) => f,
                None => {
                    return bad_request(&QueryError {
                        field: "format",
                        message: "must be ndjson or json".into(),
                    })
                }
            },
        };
        self.caught_up().await;
        let mut chunks = Box::pin(export::events(
            self.store.clone(),
            q.site.clone(),
            q.from,
            q.to,
            format,
            export::EXPORT_PAGE,
        ));
        let first = match chunks.next().await {
            Some(Ok(first)) => first,
            Some(Err(e)) => return store_error(e),
            None => Bytes::new(),
        };
        let body = stream::once(async { Ok(first) }).chain(chunks);
        let mut resp = Response::new(ResponseBody::stream(body));
        let h = resp.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let file = format!(
            "events-{}-{}-{}.{}",
            file_name(&q.site),
            q.from,
            q.to,
            format.extension()
        );
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
            h.insert(CONTENT_DISPOSITION, v);
        }
        resp
    }

    /// A stats endpoint. Parameters are checked before the query waits for its turn, so a bad
    /// request is refused at once however busy the store is; the query itself runs under
    /// [`QUERY_DEADLINE`], [`MAX_CONCURRENT_QUERIES`] at a time.
    async fn stats(
        &self,
        endpoint: &str,
        who: &Credential,
        params: &BTreeMap<String, String>,
        raw_query: Option<&str>,
        now: i64,
    ) -> Reply {
        // A share link may name only its own site.
        if let Credential::Share { site } = who {
            let asked = params
                .get("site")
                .map(|s| s.trim().to_ascii_lowercase())
                .unwrap_or_else(|| "default".into());
            if endpoint == "sites" || &asked != site {
                return forbidden("this share link reads one site only");
            }
        }
        let query = match Query::parse(endpoint, params, raw_query, now) {
            Ok(Some(query)) => query,
            Ok(None) => return error(StatusCode::NOT_FOUND, "not_found", "no such endpoint", None),
            Err(e) => return bad_request(&e),
        };
        let queries = self.queries.clone();
        let answered = tokio::time::timeout(QUERY_DEADLINE, async move {
            self.caught_up().await;
            // Never closed: the semaphore lives as long as the API.
            let _turn = queries.acquire_owned().await;
            self.answer(query).await
        })
        .await;
        answered
            .unwrap_or(Err(StoreError::TimedOut(QUERY_DEADLINE)))
            .unwrap_or_else(store_error)
    }

    async fn answer(&self, query: Query) -> Result<Reply, StoreError> {
        let store = &*self.store;
        Ok(match query {
            Query::Summary(q) => json(StatusCode::OK, &history::summary(store, q).await?),
            Query::Timeseries(q, Format::Json) => {
                json(StatusCode::OK, &history::timeseries(store, q).await?)
            }
            Query::Timeseries(q, Format::Csv) => csv_reply(
                "timeseries",
                &export::timeseries_csv(&history::timeseries(store, q).await?),
            ),
            Query::Breakdown(q, format) => {
                let b = history::breakdown(store, q).await?;
                match format {
                    Format::Json => json(StatusCode::OK, &b),
                    Format::Csv => csv_reply(&b.dimension.name(), &export::breakdown_csv(&b)),
                }
            }
            Query::Goals(q, format) => {
                let goals = settings::goals(store, &q.site).await?;
                let g = history::goals(store, q, goals).await?;
                match format {
                    Format::Json => json(StatusCode::OK, &g),
                    Format::Csv => csv_reply("goals", &export::goals_csv(&g)),
                }
            }
            Query::Sites => json(
                StatusCode::OK,
                &Sites {
                    sites: history::sites(store).await?,
                },
            ),
        })
    }
}

/// How a panel is answered.
#[derive(Clone, Copy)]
enum Format {
    Json,
    Csv,
}

/// A stats request whose parameters passed their checks.
enum Query {
    Summary(RangeQuery),
    Timeseries(TimeseriesQuery, Format),
    Breakdown(BreakdownQuery, Format),
    Goals(RangeQuery, Format),
    Sites,
}

impl Query {
    /// `Ok(None)` for an endpoint that does not exist.
    fn parse(
        endpoint: &str,
        params: &BTreeMap<String, String>,
        raw_query: Option<&str>,
        now: i64,
    ) -> Result<Option<Query>, QueryError> {
        let format = match params.get("format").map(|f| f.trim()) {
            None | Some("") | Some("json") => Format::Json,
            Some("csv") if matches!(endpoint, "breakdown" | "timeseries" | "goals") => Format::Csv,
            Some(_) => {
                return Err(QueryError {
                    field: "format",
                    message: "must be json, or csv on breakdown, timeseries and goals".into(),
                })
            }
        };
        let range = || RangeQuery::from_params(params, now)?.with_filters(raw_query);
        Ok(Some(match endpoint {
            "summary" => Query::Summary(range()?),
            "timeseries" => Query::Timeseries(
                TimeseriesQuery {
                    range: range()?,
                    ..TimeseriesQuery::from_params(params, now)?
                },
                format,
            ),
            "breakdown" => Query::Breakdown(
                BreakdownQuery {
                    range: range()?,
                    ..BreakdownQuery::from_params(params, now)?
                },
                format,
            ),
            "goals" => Query::Goals(range()?, format),
            "sites" => Query::Sites,
            _ => return Ok(None),
        }))
    }
}

async fn read_json<B, T>(req: Request<B>) -> Result<T, Reply>
where
    B: hyper::body::Body + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T: serde::de::DeserializeOwned,
{
    let limited = http_body_util::Limited::new(req.into_body(), MAX_JSON_BODY);
    let bytes = match limited.collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                &format!("body larger than {MAX_JSON_BODY} bytes or unreadable"),
                None,
            ))
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            &format!("invalid body: {e}"),
            None,
        )
    })
}

fn deleted(found: bool) -> Reply {
    if found {
        let mut resp = Response::new(ResponseBody::default());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        resp
    } else {
        error(StatusCode::NOT_FOUND, "not_found", "no such id", None)
    }
}

fn missing(field: &'static str) -> Reply {
    bad_request(&QueryError {
        field,
        message: "required".into(),
    })
}

fn settings_error(e: SettingsError) -> Reply {
    match e {
        SettingsError::Invalid { field, message } => bad_request(&QueryError { field, message }),
        SettingsError::Store(e) => store_error(e),
    }
}

/// The 401 of every endpoint that needs a token.
pub(crate) fn unauthorized() -> Reply {
    let mut resp = error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "send Authorization: Bearer <admin token or share token>",
        None,
    );
    resp.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"footfall\""),
    );
    resp
}

fn forbidden(message: &str) -> Reply {
    error(StatusCode::FORBIDDEN, "forbidden", message, None)
}

fn csv_reply(name: &str, body: &str) -> Reply {
    let mut resp = Response::new(ResponseBody::from(body.to_string()));
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let file = file_name(name);
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}.csv\"")) {
        h.insert(CONTENT_DISPOSITION, v);
    }
    resp
}

/// A name safe inside a quoted `filename=`: letters, digits and `_`, the rest `_`.
fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
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

pub(crate) fn store_error(e: StoreError) -> Response<ResponseBody> {
    // A slow store fails every query at once: one line a minute says it.
    static FAILED: LogLimit = LogLimit::new(Duration::from_secs(60));
    if let Some(suppressed) = FAILED.allow() {
        tracing::warn!(error = %e, suppressed, "stats query failed");
    }
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
