//! Who may send: CORS allow-list, per-IP rate limits behind trusted proxies.

mod common;

use std::sync::Arc;

use collector::config::parse_allowed_origins;
use collector::sites::{SitePolicy, SiteSet};
use collector::CollectorConfig;
use common::*;
use http::{Method, StatusCode};

#[tokio::test]
async fn preflight_and_allow_list() {
    let server = TestCollector::start(CollectorConfig {
        allowed_origins: parse_allowed_origins(
            "https://*.example.com, shop.test=https://shop.test",
        )
        .expect("origins"),
        ..Default::default()
    })
    .await;
    let url = server.url("/api/batch");

    let ok = send(
        Method::OPTIONS,
        &url,
        &[
            ("origin", "https://www.example.com"),
            ("access-control-request-method", "POST"),
        ],
        "",
    )
    .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://www.example.com")
    );
    assert_eq!(
        ok.header("access-control-allow-methods"),
        Some("POST, OPTIONS")
    );
    assert_eq!(ok.header("vary"), Some("Origin"));

    let denied = send(
        Method::OPTIONS,
        &url,
        &[
            ("origin", "https://evil.test"),
            ("access-control-request-method", "POST"),
        ],
        "",
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.header("access-control-allow-origin"), None);

    let post = |origin: &'static str, site: &'static str| {
        let url = url.clone();
        async move {
            send(
                Method::POST,
                &url,
                &[
                    ("content-type", "text/plain"),
                    ("origin", origin),
                    ("user-agent", CHROME),
                ],
                format!(r#"{{"site":"{site}","events":[{{"event":"page_view"}}]}}"#),
            )
            .await
        }
    };
    assert_eq!(
        post("https://www.example.com", "example.com").await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        post("https://evil.test", "example.com").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post("https://shop.test", "shop.test").await.status,
        StatusCode::ACCEPTED
    );
    // A rule bound to shop.test does not let shop.test send for another site.
    let cross = post("https://shop.test", "other.test").await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert_eq!(cross.json()["error"]["code"], "origin_not_allowed");
    assert_eq!(server.sink.events().len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn any_origin_by_default() {
    let server = TestCollector::default().await;
    let reply = send(
        Method::POST,
        &server.url("/api/track"),
        &[
            ("content-type", "application/json"),
            ("origin", "https://anywhere.test"),
            ("user-agent", CHROME),
        ],
        r#"{"event":"page_view"}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        reply.header("access-control-expose-headers"),
        Some("Retry-After")
    );
    server.stop().await;
}

#[tokio::test]
async fn over_limit_client_gets_429_while_another_is_served() {
    let server = TestCollector::start(CollectorConfig {
        rate_limit_per_minute: 5,
        // The test client connects from 127.0.0.1: make it the "CDN" so X-Forwarded-For
        // names the real clients.
        trusted_proxies: vec!["127.0.0.1/32".parse().expect("cidr")],
        ..Default::default()
    })
    .await;
    let url = server.url("/api/track");
    let from = |ip: &'static str| {
        let url = url.clone();
        async move {
            send(
                Method::POST,
                &url,
                &[
                    ("content-type", "application/json"),
                    ("x-forwarded-for", ip),
                    ("user-agent", CHROME),
                ],
                r#"{"event":"page_view"}"#,
            )
            .await
        }
    };
    for _ in 0..5 {
        assert_eq!(from("198.51.100.1").await.status, StatusCode::OK);
    }
    let limited = from("198.51.100.1").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(limited.json()["error"]["code"], "rate_limited");

    assert_eq!(
        from("198.51.100.2").await.status,
        StatusCode::OK,
        "other client served"
    );
    // Spoofing: a client-supplied hop left of the real one changes nothing.
    let spoofed = from("203.0.113.77, 198.51.100.1").await;
    assert_eq!(spoofed.status, StatusCode::TOO_MANY_REQUESTS);

    // Different visitors got different ids: the IP feeds the visitor hash.
    let events = server.sink.events();
    assert_ne!(events[0].visitor_id, events[events.len() - 1].visitor_id);
    server.stop().await;
}

/// Only registered sites are accepted: an unknown site gets 403 `unknown_site` naming the
/// field and reaches no sink; the site of the `Origin` (no `site` in the body) is checked the
/// same way; until the registry is read, events get 503 to retry, never a 403 to drop.
#[tokio::test]
async fn only_registered_sites_are_accepted() {
    let registry = Arc::new(SiteSet::of(["shop.test", "default"]));
    let server = TestCollector::start(CollectorConfig {
        sites: SitePolicy::Known(registry.clone()),
        ..Default::default()
    })
    .await;
    let batch = |site: &str| format!(r#"{{"site":"{site}","events":[{{"event":"page_view"}}]}}"#);
    let url = server.url("/api/batch");
    assert_eq!(
        post_beacon(&url, &batch("shop.test")).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        post_beacon(&url, &batch("SHOP.test")).await.status,
        StatusCode::ACCEPTED
    );
    let refused = post_beacon(&url, &batch("junk-1.test")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.json()["error"]["code"], "unknown_site");
    assert_eq!(refused.json()["error"]["field"], "site");
    let invalid = post_beacon(&url, &batch("not a site")).await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    // /api/track without a site: the Origin's host, else `default`.
    let track = |origin: Option<&'static str>| {
        let url = server.url("/api/track");
        async move {
            let mut headers = vec![("content-type", "application/json"), ("user-agent", CHROME)];
            if let Some(o) = origin {
                headers.push(("origin", o));
            }
            send(Method::POST, &url, &headers, r#"{"event":"page_view"}"#).await
        }
    };
    assert_eq!(track(None).await.status, StatusCode::OK);
    assert_eq!(
        track(Some("https://shop.test")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        track(Some("https://junk.test")).await.status,
        StatusCode::FORBIDDEN
    );
    let sites: Vec<String> = server.sink.events().into_iter().map(|e| e.site).collect();
    assert_eq!(sites, ["shop.test", "shop.test", "default", "shop.test"]);
    server.stop().await;

    let unread = Arc::new(SiteSet::default());
    let server = TestCollector::start(CollectorConfig {
        sites: SitePolicy::Known(unread.clone()),
        ..Default::default()
    })
    .await;
    let reply = post_beacon(&server.url("/api/batch"), &batch("shop.test")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.header("retry-after").is_some());
    unread.insert("shop.test".into());
    unread.mark_loaded();
    let reply = post_beacon(&server.url("/api/batch"), &batch("shop.test")).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    server.stop().await;
}
