//! The REST client: every endpoint the dashboard calls and its URL, in one place. The answers
//! are the server's own types from [`protocol::stats`], so the dashboard compiles against
//! exactly what the server serialises. URLs are built by pure functions (tested on the host);
//! [`get`] and [`post`] are the only code that touches `fetch`.
//!
//! The history endpoints `timeseries` and `breakdown` may be missing on an older server: they
//! answer 404 there, which callers show as "not available" rather than as an error.

use serde::de::DeserializeOwned;
use serde::Deserialize;

pub use protocol::sites::{AddSite, RegisteredSite, SiteList};
pub use protocol::stats::{Breakdown, Dimension, Interval, Sites, Summary, Timeseries};

/// The breakdown tables in the order the history view shows them.
pub const TABLES: [Dimension; 9] = [
    Dimension::Page,
    Dimension::Entry,
    Dimension::Referrer,
    Dimension::UtmSource,
    Dimension::Device,
    Dimension::Browser,
    Dimension::Os,
    Dimension::Country,
    Dimension::Event,
];

/// Heading of a dimension's table.
pub fn title(dimension: Dimension) -> &'static str {
    match dimension {
        Dimension::Page => "Pages",
        Dimension::Entry => "Entry pages",
        Dimension::Referrer => "Referrers",
        Dimension::UtmSource => "UTM sources",
        Dimension::Device => "Devices",
        Dimension::Browser => "Browsers",
        Dimension::Os => "Operating systems",
        Dimension::Country => "Countries",
        Dimension::Event => "Events",
    }
}

/// `POST /api/ws-ticket` → a one-time ticket for the WebSocket URL.
#[derive(Debug, Deserialize)]
pub struct Ticket {
    pub ticket: String,
}

/// Rows per breakdown table.
pub const BREAKDOWN_LIMIT: u32 = 10;

/// Why a call failed, in the terms the UI distinguishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 401: the token is wrong (or was rotated).
    Unauthorized,
    /// 404: this server does not have the endpoint.
    NotFound,
    /// The request never got an answer (server down, network gone).
    Network,
    /// Any other status, with the server's message when it sent one.
    Status(u16, String),
    /// A 2xx whose body is not the expected JSON.
    Decode(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Unauthorized => f.write_str("the admin token was not accepted"),
            ApiError::NotFound => f.write_str("not available on this server"),
            ApiError::Network => f.write_str("cannot reach the server"),
            ApiError::Status(code, msg) if msg.is_empty() => write!(f, "server answered {code}"),
            ApiError::Status(code, msg) => write!(f, "server answered {code}: {msg}"),
            ApiError::Decode(e) => write!(f, "unexpected answer: {e}"),
        }
    }
}

/// A time range as the API takes it: epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: i64,
    pub to: i64,
}

pub fn sites_path() -> String {
    "/api/stats/sites".into()
}

pub fn summary_path(site: &str, span: Span) -> String {
    format!(
        "/api/stats/summary?site={}&from={}&to={}",
        encode(site),
        span.from,
        span.to
    )
}

/// `tz_offset_min` in minutes east of UTC (see [`protocol::stats`]); sent as `tz=+01:00` so
/// day and hour buckets start at the viewer's local midnight and hour.
pub fn timeseries_path(site: &str, span: Span, interval: Interval, tz_offset_min: i32) -> String {
    let tz = protocol::time::format_utc_offset(tz_offset_min);
    format!(
        "/api/stats/timeseries?site={}&from={}&to={}&interval={}&tz={}",
        encode(site),
        span.from,
        span.to,
        interval.name(),
        encode(&tz)
    )
}

pub fn breakdown_path(site: &str, span: Span, dimension: Dimension) -> String {
    format!(
        "/api/stats/breakdown?site={}&from={}&to={}&dimension={}&limit={BREAKDOWN_LIMIT}",
        encode(site),
        span.from,
        span.to,
        dimension.name()
    )
}

pub const TICKET_PATH: &str = "/api/ws-ticket";

/// The site registry: `GET` lists it, `POST` `{"site":…}` adds one.
pub const REGISTRY_PATH: &str = "/api/sites";

/// `DELETE` removes `site` from the registry.
pub fn registry_site_path(site: &str) -> String {
    format!("{REGISTRY_PATH}/{}", encode(site))
}

/// The WebSocket URL for a page served from `origin` (`http://host:port`).
pub fn ws_url(origin: &str, site: &str, ticket: &str) -> String {
    let origin = if let Some(rest) = origin.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = origin.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        origin.to_string()
    };
    format!(
        "{origin}/ws?site={}&ticket={}",
        encode(site),
        encode(ticket)
    )
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Maps a status and body to the result callers see.
pub fn decode<T: DeserializeOwned>(status: u16, body: &str) -> Result<T, ApiError> {
    match status {
        200..=299 => serde_json::from_str(body).map_err(|e| ApiError::Decode(e.to_string())),
        401 | 403 => Err(ApiError::Unauthorized),
        404 => Err(ApiError::NotFound),
        _ => Err(ApiError::Status(status, error_message(body))),
    }
}

/// The `error.message` of the API's common error shape, if the body has one.
fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error")?.get("message")?.as_str().map(String::from))
        .unwrap_or_default()
}

/// `GET path` with the admin token.
pub async fn get<T: DeserializeOwned>(token: &str, path: &str) -> Result<T, ApiError> {
    let (status, body) = fetch("GET", token, path, None).await?;
    decode(status, &body)
}

/// `POST path` (empty body) with the admin token.
pub async fn post<T: DeserializeOwned>(token: &str, path: &str) -> Result<T, ApiError> {
    let (status, body) = fetch("POST", token, path, None).await?;
    decode(status, &body)
}

/// `POST path` with a JSON body and the admin token; the answer's body is not needed.
pub async fn post_json<B: serde::Serialize>(
    token: &str,
    path: &str,
    body: &B,
) -> Result<(), ApiError> {
    let json = serde_json::to_string(body).map_err(|e| ApiError::Decode(e.to_string()))?;
    let (status, body) = fetch("POST", token, path, Some(json)).await?;
    decode::<serde_json::Value>(status, &body).map(drop)
}

/// `DELETE path` with the admin token.
pub async fn delete(token: &str, path: &str) -> Result<(), ApiError> {
    let (status, body) = fetch("DELETE", token, path, None).await?;
    decode::<serde_json::Value>(status, &body).map(drop)
}

/// The one place that calls the browser's `fetch`. Same origin, so relative paths work.
async fn fetch(
    method: &str,
    token: &str,
    path: &str,
    json: Option<String>,
) -> Result<(u16, String), ApiError> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;

    let window = web_sys::window().ok_or(ApiError::Network)?;
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let headers = web_sys::Headers::new().map_err(|_| ApiError::Network)?;
    headers
        .set("Authorization", &format!("Bearer {token}"))
        .map_err(|_| ApiError::Unauthorized)?;
    if let Some(json) = json {
        headers
            .set("Content-Type", "application/json")
            .map_err(|_| ApiError::Network)?;
        init.set_body(&wasm_bindgen::JsValue::from_str(&json));
    }
    init.set_headers(&headers);
    let request =
        web_sys::Request::new_with_str_and_init(path, &init).map_err(|_| ApiError::Network)?;
    let response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|_| ApiError::Network)?;
    let response: web_sys::Response = response.dyn_into().map_err(|_| ApiError::Network)?;
    let text = response.text().map_err(|_| ApiError::Network)?;
    let body = JsFuture::from(text).await.map_err(|_| ApiError::Network)?;
    Ok((response.status(), body.as_string().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let span = Span { from: 1, to: 2 };
        assert_eq!(
            summary_path("shop.example", span),
            "/api/stats/summary?site=shop.example&from=1&to=2"
        );
        assert_eq!(
            timeseries_path("a b", span, Interval::Hour, 0),
            "/api/stats/timeseries?site=a%20b&from=1&to=2&interval=hour&tz=Z"
        );
        // East of UTC is positive: India (UTC+05:30) is 330, California (UTC−08:00) −480.
        assert!(timeseries_path("s", span, Interval::Day, 330).ends_with("&tz=%2B05%3A30"));
        assert!(timeseries_path("s", span, Interval::Day, -480).ends_with("&tz=-08%3A00"));
        assert_eq!(
            breakdown_path("s", span, Dimension::UtmSource),
            "/api/stats/breakdown?site=s&from=1&to=2&dimension=utm_source&limit=10"
        );
        assert_eq!(
            ws_url("http://127.0.0.1:8080", "s", "t+/="),
            "ws://127.0.0.1:8080/ws?site=s&ticket=t%2B%2F%3D"
        );
        assert_eq!(
            registry_site_path("shop.example:8080"),
            "/api/sites/shop.example%3A8080"
        );
        assert_eq!(
            ws_url("https://stats.example", "s", "t"),
            "wss://stats.example/ws?site=s&ticket=t"
        );
        // Every dimension has a table.
        let mut tables = TABLES.to_vec();
        tables.sort();
        assert_eq!(tables, Dimension::ALL.to_vec());
    }

    #[test]
    fn statuses_map_to_what_the_ui_shows() {
        let ok: Result<Summary, _> = decode(
            200,
            r#"{"site":"s","from":"x","to":"y","pageviews":3,"visitors":2,"sessions":2,
               "events":5,"eventsByName":{"page_view":3,"signup":2}}"#,
        );
        let ok = ok.expect("summary");
        assert_eq!(ok.pageviews, 3);
        assert_eq!(ok.events_by_name.get("signup"), Some(&2));
        assert_eq!(decode::<Summary>(401, ""), Err(ApiError::Unauthorized));
        assert_eq!(decode::<Summary>(404, "<html>"), Err(ApiError::NotFound));
        assert_eq!(
            decode::<Summary>(
                400,
                r#"{"error":{"code":"invalid_parameter","message":"bad from"}}"#
            ),
            Err(ApiError::Status(400, "bad from".into()))
        );
        assert!(matches!(
            decode::<Summary>(200, "not json"),
            Err(ApiError::Decode(_))
        ));
    }
}
