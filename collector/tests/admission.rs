//! Who may send: CORS allow-list, per-IP rate limits behind trusted proxies.

mod common;

use collector::config::parse_allowed_origins;
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
