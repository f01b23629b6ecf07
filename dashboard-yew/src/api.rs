//! The REST client: every endpoint the dashboard calls and its URL, in one place. The answers
//! are the server's own types from [`protocol::stats`], so the dashboard compiles against
//! exactly what the server serialises. URLs are built by pure functions (tested on the host);
//! [`fetch`] is the only code that touches the browser's `fetch`.
//!
//! An endpoint an older server lacks answers 404, which callers show as "not available"
//! rather than as an error.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use protocol::sites::{AddSite, RegisteredSite, SiteList};
pub use protocol::stats::{
    Access, Breakdown, Compare, Dimension, ExportFormat, Field, Filter, Interval, Role, Sites,
    Summary, Timeseries,
};

/// The breakdown panels of the history view, in the order it shows them.
pub const TABLES: [Dimension; 14] = [
    Dimension::Page,
    Dimension::EntryPage,
    Dimension::ExitPage,
    Dimension::Referrer,
    Dimension::UtmSource,
    Dimension::UtmMedium,
    Dimension::UtmCampaign,
    Dimension::Country,
    Dimension::Region,
    Dimension::City,
    Dimension::Device,
    Dimension::Browser,
    Dimension::Os,
    Dimension::Event,
];

/// Panels shown only when they have rows: most sites send no UTM medium or campaign, and
/// regions and cities exist only with a geoip database.
pub fn hidden_when_empty(dimension: Dimension) -> bool {
    matches!(
        dimension,
        Dimension::UtmMedium | Dimension::UtmCampaign | Dimension::Region | Dimension::City
    )
}

/// Heading of a dimension's panel.
pub fn title(dimension: Dimension) -> &'static str {
    match dimension {
        Dimension::Page => "Pages",
        Dimension::Entry | Dimension::EntryPage => "Entry pages",
        Dimension::ExitPage => "Exit pages",
        Dimension::Referrer => "Referrers",
        Dimension::UtmSource => "UTM sources",
        Dimension::UtmMedium => "UTM mediums",
        Dimension::UtmCampaign => "UTM campaigns",
        Dimension::Device => "Devices",
        Dimension::Browser => "Browsers",
        Dimension::Os => "Operating systems",
        Dimension::Country => "Countries",
        Dimension::Region => "Regions",
        Dimension::City => "Cities",
        Dimension::Event => "Events",
    }
}

/// A field's name in a sentence ("Page is /pricing", "plan is pro").
pub fn field_label(field: &Field) -> String {
    match field {
        Field::Dim(d) => match d {
            Dimension::Page => "Page",
            Dimension::Entry | Dimension::EntryPage => "Entry page",
            Dimension::ExitPage => "Exit page",
            Dimension::Referrer => "Referrer",
            Dimension::UtmSource => "UTM source",
            Dimension::UtmMedium => "UTM medium",
            Dimension::UtmCampaign => "UTM campaign",
            Dimension::Device => "Device",
            Dimension::Browser => "Browser",
            Dimension::Os => "OS",
            Dimension::Country => "Country",
            Dimension::Region => "Region",
            Dimension::City => "City",
            Dimension::Event => "Event",
        }
        .to_string(),
        Field::Prop(name) => format!("Property {name}"),
    }
}

/// What the counts of a dimension's panel count (its column header).
pub fn counts(dimension: Dimension) -> &'static str {
    match dimension {
        Dimension::EntryPage | Dimension::ExitPage => "Visits",
        Dimension::Event => "Events",
        _ => "Page views",
    }
}

/// `POST /api/ws-ticket` → a one-time ticket for the WebSocket URL.
#[derive(Debug, Deserialize)]
pub struct Ticket {
    pub ticket: String,
}

/// Rows per breakdown panel.
pub const BREAKDOWN_LIMIT: u32 = 10;
/// Rows of a panel's CSV export: every row the API gives (its maximum).
pub const EXPORT_LIMIT: u32 = 1000;

/// Why a call failed, in the terms the UI distinguishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 401: the token is wrong (or was rotated, or the share link revoked).
    Unauthorized,
    /// 403: the credential is valid but may not do this (a share link managing goals).
    Forbidden,
    /// 404: this server does not have the endpoint (or the thing is gone).
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
            ApiError::Unauthorized => f.write_str("the token was not accepted"),
            ApiError::Forbidden => f.write_str("this link may not do that"),
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

/// What every stats request of one view has in common: site, range and filters.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub site: &'a str,
    pub span: Span,
    pub filters: &'a [Filter],
}

/// A path with query parameters, each value percent-encoded.
struct Query(String);

impl Query {
    fn new(path: &str) -> Self {
        Query(path.to_string())
    }

    fn param(mut self, key: &str, value: &str) -> Self {
        self.0.push(if self.0.contains('?') { '&' } else { '?' });
        self.0.push_str(key);
        self.0.push('=');
        self.0.push_str(&encode(value));
        self
    }

    fn scope(self, scope: Scope<'_>) -> Self {
        let q = self
            .param("site", scope.site)
            .param("from", &scope.span.from.to_string())
            .param("to", &scope.span.to.to_string());
        scope
            .filters
            .iter()
            .fold(q, |q, f| q.param("filter", &f.to_param()))
    }

    fn compare(self, compare: Option<Compare>) -> Self {
        match compare {
            Some(c) => self.param("compare", c.name()),
            None => self,
        }
    }

    fn csv(self, csv: bool) -> Self {
        if csv {
            self.param("format", ExportFormat::Csv.name())
        } else {
            self
        }
    }
}

pub fn sites_path() -> String {
    "/api/stats/sites".into()
}

pub const ACCESS_PATH: &str = "/api/access";

pub fn summary_path(scope: Scope<'_>, compare: Option<Compare>) -> String {
    Query::new("/api/stats/summary")
        .scope(scope)
        .compare(compare)
        .0
}

/// `tz_offset_min` in minutes east of UTC (see [`protocol::stats`]); sent as `tz=+01:00` so
/// day and hour buckets start at the viewer's local midnight and hour.
pub fn timeseries_path(
    scope: Scope<'_>,
    interval: Interval,
    tz_offset_min: i32,
    compare: Option<Compare>,
    csv: bool,
) -> String {
    Query::new("/api/stats/timeseries")
        .scope(scope)
        .param("interval", interval.name())
        .param("tz", &protocol::time::format_utc_offset(tz_offset_min))
        .compare(compare)
        .csv(csv)
        .0
}

pub fn breakdown_path(scope: Scope<'_>, field: &Field, limit: u32, csv: bool) -> String {
    Query::new("/api/stats/breakdown")
        .scope(scope)
        .param("dimension", &field.name())
        .param("limit", &limit.to_string())
        .csv(csv)
        .0
}

pub fn goal_stats_path(scope: Scope<'_>, csv: bool) -> String {
    Query::new("/api/stats/goals").scope(scope).csv(csv).0
}

pub const GOALS_PATH: &str = "/api/goals";

pub fn goal_path(id: &str, site: &str) -> String {
    Query::new(&format!("/api/goals/{}", encode(id)))
        .param("site", site)
        .0
}

pub const SHARES_PATH: &str = "/api/shares";

pub fn shares_path(site: &str) -> String {
    Query::new(SHARES_PATH).param("site", site).0
}

pub fn share_path(id: &str) -> String {
    format!("{SHARES_PATH}/{}", encode(id))
}

/// The raw events of a range (admin only), streamed by the server.
pub fn export_events_path(site: &str, span: Span) -> String {
    Query::new("/api/export/events")
        .param("site", site)
        .param("from", &span.from.to_string())
        .param("to", &span.to.to_string())
        .param("format", ExportFormat::Ndjson.name())
        .0
}

/// A download the history view offers: a panel as CSV (the current range and filters), or
/// the raw events of the range (admins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Export {
    Series,
    Breakdown(Field),
    Goals,
    RawEvents,
}

impl Export {
    /// The request that answers it.
    pub fn path(&self, scope: Scope<'_>, tz_offset_min: i32) -> String {
        match self {
            Export::Series => {
                let interval = Interval::default_for(scope.span.to - scope.span.from);
                timeseries_path(scope, interval, tz_offset_min, None, true)
            }
            Export::Breakdown(field) => breakdown_path(scope, field, EXPORT_LIMIT, true),
            Export::Goals => goal_stats_path(scope, true),
            Export::RawEvents => export_events_path(scope.site, scope.span),
        }
    }

    /// The panel's part of the file name.
    pub fn name(&self) -> String {
        match self {
            Export::Series => "timeseries".into(),
            Export::Breakdown(field) => field.name(),
            Export::Goals => "goals".into(),
            Export::RawEvents => "events".into(),
        }
    }

    pub fn extension(&self) -> &'static str {
        match self {
            Export::RawEvents => "ndjson",
            _ => "csv",
        }
    }
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

/// Reverses [`encode`] (and form encoding's `+` for a space); a broken escape stays as it is.
pub fn decode_component(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Maps a status and body to the result callers see.
pub fn decode<T: DeserializeOwned>(status: u16, body: &str) -> Result<T, ApiError> {
    check(status, body)?;
    serde_json::from_str(body).map_err(|e| ApiError::Decode(e.to_string()))
}

/// A status as the UI sees it: 2xx is fine, the rest an [`ApiError`].
pub fn check(status: u16, body: &str) -> Result<(), ApiError> {
    match status {
        200..=299 => Ok(()),
        401 => Err(ApiError::Unauthorized),
        403 => Err(ApiError::Forbidden),
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

/// `GET path` with the token.
pub async fn get<T: DeserializeOwned>(token: &str, path: &str) -> Result<T, ApiError> {
    let (status, body) = text(fetch("GET", token, path, None).await?).await?;
    decode(status, &body)
}

/// `POST path` with a JSON body (`None`: empty) and the token.
pub async fn post<T: DeserializeOwned>(
    token: &str,
    path: &str,
    body: Option<&impl Serialize>,
) -> Result<T, ApiError> {
    let json = body
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| ApiError::Decode(e.to_string()))?;
    let (status, body) = text(fetch("POST", token, path, json).await?).await?;
    decode(status, &body)
}

/// `DELETE path` with the token; any 2xx (204) is success.
pub async fn delete(token: &str, path: &str) -> Result<(), ApiError> {
    let (status, body) = text(fetch("DELETE", token, path, None).await?).await?;
    check(status, &body)
}

/// `GET path` and hand the answer to the browser as a file called `filename`. The API needs
/// the `Authorization` header, which a plain link cannot send, so the body goes through a
/// blob URL.
pub async fn download(token: &str, path: &str, filename: &str) -> Result<(), ApiError> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;

    let response = fetch("GET", token, path, None).await?;
    if !response.ok() {
        let (status, body) = text(response).await?;
        return check(status, &body);
    }
    let blob = JsFuture::from(response.blob().map_err(|_| ApiError::Network)?)
        .await
        .map_err(|_| ApiError::Network)?;
    save(&blob.unchecked_into(), filename)
}

fn save(blob: &web_sys::Blob, filename: &str) -> Result<(), ApiError> {
    use wasm_bindgen::JsCast;

    let fail = |_| ApiError::Decode("the browser refused the download".into());
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or(ApiError::Network)?;
    let url = web_sys::Url::create_object_url_with_blob(blob).map_err(fail)?;
    let a: web_sys::HtmlAnchorElement =
        document.create_element("a").map_err(fail)?.unchecked_into();
    a.set_href(&url);
    a.set_download(filename);
    a.click();
    // Revoking right after the click can cancel the download before the browser has read
    // the blob; a minute later it is long saved.
    gloo_timers::callback::Timeout::new(60_000, move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    })
    .forget();
    Ok(())
}

async fn text(response: web_sys::Response) -> Result<(u16, String), ApiError> {
    use wasm_bindgen_futures::JsFuture;
    let text = response.text().map_err(|_| ApiError::Network)?;
    let body = JsFuture::from(text).await.map_err(|_| ApiError::Network)?;
    Ok((response.status(), body.as_string().unwrap_or_default()))
}

/// The one place that calls the browser's `fetch`. Same origin, so relative paths work.
async fn fetch(
    method: &str,
    token: &str,
    path: &str,
    json: Option<String>,
) -> Result<web_sys::Response, ApiError> {
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
    response.dyn_into().map_err(|_| ApiError::Network)
}

#[cfg(test)]
mod tests;
