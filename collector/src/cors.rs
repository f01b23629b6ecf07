//! CORS for the ingest endpoints. The tracker sends `text/plain` beacons, which need no
//! preflight; fetch-based clients with `application/json` do, and get one answered here.

use http::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, VARY,
};
use http::{HeaderMap, StatusCode};
use hyper::Response;

use footfall_http::ResponseBody;

use crate::config::AllowedOrigins;

/// May `origin` send events at all (for some site)? Requests without an `Origin` header are
/// not from a browser's cross-origin context and are always allowed.
pub(crate) fn origin_allowed(allowed: &AllowedOrigins, origin: Option<&str>) -> bool {
    match (allowed, origin) {
        (AllowedOrigins::Any, _) | (_, None) => true,
        (AllowedOrigins::List(rules), Some(o)) => rules.iter().any(|r| r.origin.matches(o)),
    }
}

/// May `origin` send events for `site`? Rules bound to another site do not count.
pub(crate) fn origin_allowed_for_site(
    allowed: &AllowedOrigins,
    origin: Option<&str>,
    site: &str,
) -> bool {
    match (allowed, origin) {
        (AllowedOrigins::Any, _) | (_, None) => true,
        (AllowedOrigins::List(rules), Some(o)) => rules
            .iter()
            .filter(|r| r.site.as_deref().is_none_or(|s| s == site))
            .any(|r| r.origin.matches(o)),
    }
}

/// Adds the CORS response headers for an allowed origin. `Retry-After` is exposed so a
/// cross-origin tracker can honour it on 429 and 503 instead of guessing a backoff.
pub(crate) fn decorate(allowed: &AllowedOrigins, origin: Option<&str>, headers: &mut HeaderMap) {
    headers.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Retry-After"),
    );
    match allowed {
        AllowedOrigins::Any => {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        }
        AllowedOrigins::List(_) => {
            // The answer depends on the Origin, so caches (the CDN) must key on it.
            headers.insert(VARY, HeaderValue::from_static("Origin"));
            if let Some(value) = origin
                .filter(|o| origin_allowed(allowed, Some(o)))
                .and_then(|o| HeaderValue::from_str(o).ok())
            {
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, value);
            }
        }
    }
}

/// The answer to an `OPTIONS` preflight on an ingest endpoint.
pub(crate) fn preflight(allowed: &AllowedOrigins, origin: Option<&str>) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::default());
    if !origin_allowed(allowed, origin) {
        *resp.status_mut() = StatusCode::FORBIDDEN;
        resp.headers_mut()
            .insert(VARY, HeaderValue::from_static("Origin"));
        return resp;
    }
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    decorate(allowed, origin, h);
    h.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    h.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, Content-Encoding"),
    );
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_allowed_origins;

    #[test]
    fn site_bound_rules() {
        let allowed = parse_allowed_origins("https://a.com, b.com=https://b.com").expect("parses");
        assert!(origin_allowed(&allowed, Some("https://b.com")));
        assert!(origin_allowed_for_site(
            &allowed,
            Some("https://a.com"),
            "b.com"
        ));
        assert!(origin_allowed_for_site(
            &allowed,
            Some("https://b.com"),
            "b.com"
        ));
        assert!(!origin_allowed_for_site(
            &allowed,
            Some("https://b.com"),
            "c.com"
        ));
        assert!(!origin_allowed(&allowed, Some("https://evil.com")));
        assert!(origin_allowed(&allowed, None));
    }
}
