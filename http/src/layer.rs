//! What the server adds to every response, in every mode, whatever handler made it:
//!
//! - security headers (`nosniff`, no framing, no referrer; JSON gets a CSP that forbids
//!   everything, because it is data and never a document);
//! - `Cache-Control: no-store` on everything under `/api/` — no CDN, proxy or browser may
//!   keep an API answer, whatever the handler said;
//! - compression on the fly of compressible answers of at least [`MIN_COMPRESS_BYTES`]
//!   (stats API JSON, metrics) when the client accepts it. Answers that carry an `ETag` are
//!   left alone: they are static files, which negotiate their own precompressed variants,
//!   and a validator must not be shared between encodings. Streamed answers (exports) are
//!   left alone too: compressing them here would mean holding them whole.

use bytes::Bytes;
use http::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_SECURITY_POLICY,
    CONTENT_TYPE, ETAG, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::BodyExt;

use crate::encoding::{compress, vary_on_accept_encoding, AcceptEncoding};
use crate::ResponseBody;

/// Smaller answers fit in a packet or two either way; compressing them costs more than it
/// saves.
pub const MIN_COMPRESS_BYTES: usize = 1024;

/// The parts of a request the layer needs, taken before the handler consumes it.
pub(crate) struct RequestInfo {
    api: bool,
    head: bool,
    accept: AcceptEncoding,
}

impl RequestInfo {
    pub(crate) fn of<B>(req: &http::Request<B>) -> Self {
        RequestInfo {
            api: req.uri().path().starts_with("/api/"),
            head: req.method() == Method::HEAD,
            accept: AcceptEncoding::from_headers(req.headers()),
        }
    }
}

pub(crate) async fn finish(
    resp: Response<ResponseBody>,
    req: &RequestInfo,
) -> Response<ResponseBody> {
    let mut resp = resp;
    security_headers(resp.headers_mut());
    if req.api {
        resp.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if req.head || !compressible(&resp) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let full = match body.into_full() {
        Ok(full) => full,
        Err(stream) => return Response::from_parts(parts, stream),
    };
    // A complete body: collecting is immediate and cannot fail.
    let bytes = match full.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    if bytes.len() < MIN_COMPRESS_BYTES {
        return Response::from_parts(parts, ResponseBody::new(bytes));
    }
    vary_on_accept_encoding(&mut parts.headers);
    let coding = req.accept.choose(true, true);
    let Some(value) = coding.header() else {
        return Response::from_parts(parts, ResponseBody::new(bytes));
    };
    match compress(coding, &bytes) {
        Some(encoded) if encoded.len() < bytes.len() => {
            parts
                .headers
                .insert(CONTENT_ENCODING, HeaderValue::from_static(value));
            // hyper writes the length of the body it is given.
            parts.headers.remove(CONTENT_LENGTH);
            Response::from_parts(parts, ResponseBody::new(Bytes::from(encoded)))
        }
        _ => Response::from_parts(parts, ResponseBody::new(bytes)),
    }
}

/// May this answer be compressed here? Complete, text-like, not yet encoded, not a static
/// file, and a status that has a body.
fn compressible(resp: &Response<ResponseBody>) -> bool {
    if resp.body().is_stream() {
        return false;
    }
    let status = resp.status();
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status == StatusCode::PARTIAL_CONTENT
    {
        return false;
    }
    let h = resp.headers();
    if h.contains_key(CONTENT_ENCODING) || h.contains_key(ETAG) {
        return false;
    }
    if h.get(CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("no-transform"))
    {
        return false;
    }
    let Some(ct) = h.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    is_compressible_type(ct)
}

/// Types worth compressing on the fly: text and JSON. (wasm is only ever a static file,
/// compressed at build time; images are compressed formats already.)
fn is_compressible_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.starts_with("text/")
        || essence == "application/json"
        || essence == "application/javascript"
        || essence == "image/svg+xml"
}

/// Security headers on every response. Handlers may set their own (the dashboard's page has
/// its own CSP; the tracker is cross-origin on purpose); these only fill the gaps, except
/// `nosniff`, which is always right.
fn security_headers(h: &mut HeaderMap) {
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.entry(X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    h.entry(REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    let is_json = h
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        h.entry(CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(
                "default-src 'none'; frame-ancestors 'none'",
            ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{ACCEPT_ENCODING, VARY};

    fn info(path: &str, accept: &str) -> RequestInfo {
        let req = http::Request::get(path)
            .header(ACCEPT_ENCODING, accept)
            .body(())
            .expect("request");
        RequestInfo::of(&req)
    }

    fn json(len: usize) -> Response<ResponseBody> {
        let body = format!("[{}]", vec!["1"; len / 2].join(","));
        crate::answer::json_bytes(StatusCode::OK, body)
    }

    async fn body(resp: Response<ResponseBody>) -> Bytes {
        resp.into_body().collect().await.expect("body").to_bytes()
    }

    #[tokio::test]
    async fn large_json_is_compressed_when_accepted() {
        let resp = finish(json(4000), &info("/api/stats/summary", "gzip, br")).await;
        assert_eq!(resp.headers()[CONTENT_ENCODING], "br");
        assert_eq!(resp.headers()[VARY], "Accept-Encoding");
        assert!(body(resp).await.len() < 1000);
        let resp = finish(json(4000), &info("/api/stats/summary", "gzip")).await;
        assert_eq!(resp.headers()[CONTENT_ENCODING], "gzip");
        let resp = finish(json(4000), &info("/api/stats/summary", "identity")).await;
        assert!(!resp.headers().contains_key(CONTENT_ENCODING));
        assert_eq!(resp.headers()[VARY], "Accept-Encoding");
    }

    #[tokio::test]
    async fn small_answers_and_static_files_are_left_alone() {
        let resp = finish(json(100), &info("/api/track", "br")).await;
        assert!(!resp.headers().contains_key(CONTENT_ENCODING));
        assert!(!resp.headers().contains_key(VARY));
        let mut tagged = json(4000);
        tagged
            .headers_mut()
            .insert(ETAG, HeaderValue::from_static("\"x\""));
        let resp = finish(tagged, &info("/x.json", "br")).await;
        assert!(!resp.headers().contains_key(CONTENT_ENCODING));
    }

    #[tokio::test]
    async fn streamed_answers_pass_through_unbuffered() {
        let chunks = futures_util::stream::iter(
            ["[1,", "2]"].map(|s| Ok::<_, std::convert::Infallible>(Bytes::from(s.repeat(600)))),
        );
        let mut resp = Response::new(ResponseBody::stream(chunks));
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(crate::answer::JSON));
        let resp = finish(resp, &info("/api/export/events", "br")).await;
        assert!(resp.body().is_stream());
        assert!(!resp.headers().contains_key(CONTENT_ENCODING));
        assert_eq!(resp.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(body(resp).await.len(), 3000);
    }

    #[tokio::test]
    async fn api_answers_are_never_cacheable_and_all_get_security_headers() {
        let mut resp = json(10);
        resp.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
        let resp = finish(resp, &info("/api/stats/sites", "")).await;
        assert_eq!(resp.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(resp.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(resp.headers()[X_FRAME_OPTIONS], "DENY");
        assert!(resp.headers().contains_key(CONTENT_SECURITY_POLICY));
        let page = crate::answer::text(StatusCode::OK, "hi");
        let resp = finish(page, &info("/demo/", "")).await;
        assert_eq!(resp.headers()[REFERRER_POLICY], "no-referrer");
        assert!(!resp.headers().contains_key(CONTENT_SECURITY_POLICY));
    }
}
