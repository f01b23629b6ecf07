//! The answers every service builds: JSON bodies, the shared error body, plain text,
//! redirects. API answers are never cacheable (`Cache-Control: no-store`): they are private,
//! change every second, and a CDN must never keep one.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use http::{Response, StatusCode};
use protocol::api::{to_json, ErrorBody};
use serde::Serialize;

use crate::ResponseBody;

pub const JSON: &str = "application/json; charset=utf-8";
pub const TEXT: &str = "text/plain; charset=utf-8";
pub const NO_STORE: &str = "no-store";

/// `body` as JSON with `status`, not cacheable.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<ResponseBody> {
    json_bytes(status, to_json(body))
}

/// Already serialised JSON with `status`, not cacheable.
pub fn json_bytes(status: StatusCode, body: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::new(body.into()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    resp
}

/// `{"success":false,"error":{"code":..,"message":..,"field":..}}` with `status`: the one
/// error shape of every Footfall API.
pub fn error(
    status: StatusCode,
    code: &str,
    message: &str,
    field: Option<&str>,
) -> Response<ResponseBody> {
    json(status, &ErrorBody::new(code, message, field))
}

/// 404 in the error shape.
pub fn not_found() -> Response<ResponseBody> {
    error(StatusCode::NOT_FOUND, "not_found", "no such endpoint", None)
}

/// 405 in the error shape, with the `Allow` header.
pub fn method_not_allowed(allow: &'static str) -> Response<ResponseBody> {
    let mut resp = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("method not allowed; use {allow}"),
        None,
    );
    resp.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    resp
}

/// Adds `Retry-After` in whole seconds, at least 1 (0 would invite a retry storm).
pub fn with_retry_after(
    mut resp: Response<ResponseBody>,
    after: Duration,
) -> Response<ResponseBody> {
    resp.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs(after)));
    resp
}

pub fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs_f64().ceil().max(1.0) as u64
}

/// Plain text for people (static-file errors, "not built" explanations), not cacheable.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::new(body.into()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(TEXT));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    resp
}

/// 301 to `location`.
pub fn redirect(location: &'static str) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::default());
    *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
    resp.headers_mut()
        .insert(LOCATION, HeaderValue::from_static(location));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_at_least_one_second() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(30)), 30);
    }

    #[test]
    fn errors_are_json_and_never_cached() {
        let resp = method_not_allowed("GET, HEAD");
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(resp.headers()[ALLOW], "GET, HEAD");
        assert_eq!(resp.headers()[CONTENT_TYPE], JSON);
        assert_eq!(resp.headers()[CACHE_CONTROL], NO_STORE);
        let resp = with_retry_after(not_found(), Duration::from_millis(10));
        assert_eq!(resp.headers()[RETRY_AFTER], "1");
    }
}
