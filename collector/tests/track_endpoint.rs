//! `POST /api/track` over real HTTP: the seed-compatible shape and every error status.

mod common;

use common::*;
use http::{Method, StatusCode};

fn seed_body() -> String {
    include_str!("fixtures/seed_track.json")
        .trim()
        .replace("TIMESTAMP", &now_ms().to_string())
}

#[tokio::test]
async fn seed_request_gets_the_seed_response_byte_for_byte() {
    let server = TestCollector::default().await;
    let reply = post_json(&server.url("/api/track"), &seed_body()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.text(),
        r#"{"success":true,"message":"Event tracked successfully"}"#
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let events = server.sink.events();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e.name.as_str(), e.path.as_str(), e.site.as_str()),
        ("page_view", "/home", "default")
    );
    assert_eq!(e.session_id.as_deref(), Some("sess_123"));
    assert_eq!(e.country.as_deref(), Some("IN"));
    assert_eq!(e.browser, "Safari");
    server.stop().await;
}

#[tokio::test]
async fn site_comes_from_body_then_origin_then_default() {
    let server = TestCollector::default().await;
    let url = server.url("/api/track");
    post_json(&url, r#"{"event":"a","site":"Shop.Example"}"#).await;
    send(
        Method::POST,
        &url,
        &[
            ("content-type", "application/json"),
            ("origin", "https://blog.example:8443"),
            ("user-agent", CHROME),
        ],
        r#"{"event":"b"}"#,
    )
    .await;
    post_json(&url, r#"{"event":"c"}"#).await;
    let sites: Vec<String> = server.sink.events().into_iter().map(|e| e.site).collect();
    assert_eq!(sites, ["shop.example", "blog.example", "default"]);
    server.stop().await;
}

#[tokio::test]
async fn invalid_field_is_400_naming_the_field() {
    let server = TestCollector::default().await;
    let reply = post_json(
        &server.url("/api/track"),
        r#"{"event":"page_view","sessionId":"has spaces"}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let body = reply.json();
    assert_eq!(body["success"], false);
    assert_eq!(body["error"]["field"], "sessionId");
    assert_eq!(body["error"]["code"], "invalid_characters");
    assert!(server.sink.events().is_empty());
    server.stop().await;
}

/// The issue's case: `{"event": 12345}` used to get "invalid JSON at line 1 column 14".
#[tokio::test]
async fn a_field_of_the_wrong_type_is_400_naming_it() {
    let server = TestCollector::default().await;
    let url = server.url("/api/track");
    let reply = post_json(
        &url,
        r#"{"event": 12345, "page": "/home", "sessionId": "s1"}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let body = reply.json();
    assert_eq!(body["error"]["code"], "invalid_type");
    assert_eq!(body["error"]["field"], "event");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("expected a string")),
        "{body}"
    );
    for (json, field, code) in [
        (
            r#"{"event":"page_view","timestamp":"now"}"#,
            "timestamp",
            "invalid_type",
        ),
        (
            r#"{"event":"click","target":{"tag":["a"]}}"#,
            "target.tag",
            "invalid_type",
        ),
        (r#"{"page":"/"}"#, "event", "required"),
    ] {
        let body = post_json(&url, json).await.json();
        assert_eq!(body["error"]["field"], field, "{json}");
        assert_eq!(body["error"]["code"], code, "{json}");
    }
    // Not JSON at all: no field to name, the position instead.
    let body = post_json(&url, r#"{"event":"#).await.json();
    assert_eq!(body["error"]["code"], "invalid_json");
    assert!(body["error"].get("field").is_none());
    assert!(server.sink.events().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn malformed_json_and_missing_event_are_400() {
    let server = TestCollector::default().await;
    let url = server.url("/api/track");
    for body in [r#"{"event":"#, r#"{"page":"/"}"#, "", "[]", "null"] {
        let reply = post_json(&url, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(reply.json()["success"], false);
    }
    server.stop().await;
}

#[tokio::test]
async fn too_large_is_413() {
    let server = TestCollector::default().await;
    let big = format!(r#"{{"event":"x","title":"{}"}}"#, "a".repeat(20 * 1024));
    let reply = post_json(&server.url("/api/track"), &big).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.json()["error"]["code"], "payload_too_large");
    server.stop().await;
}

#[tokio::test]
async fn wrong_media_type_is_415() {
    let server = TestCollector::default().await;
    let reply = send(
        Method::POST,
        &server.url("/api/track"),
        &[("content-type", "application/x-www-form-urlencoded")],
        "event=page_view",
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let reply = send(
        Method::POST,
        &server.url("/api/track"),
        &[
            ("content-type", "application/json"),
            ("content-encoding", "br"),
        ],
        "{}",
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    server.stop().await;
}

#[tokio::test]
async fn wrong_method_is_405_with_allow_and_unknown_path_404() {
    let server = TestCollector::default().await;
    let reply = send(Method::GET, &server.url("/api/track"), &[], "").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.header("allow"), Some("POST, OPTIONS"));
    assert_eq!(reply.json()["error"]["code"], "method_not_allowed");
    let reply = send(Method::DELETE, &server.url("/api/health"), &[], "").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    let reply = send(Method::GET, &server.url("/nope"), &[], "").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["error"]["code"], "not_found");
    server.stop().await;
}

#[tokio::test]
async fn security_headers_on_every_response() {
    let server = TestCollector::default().await;
    for reply in [
        post_json(&server.url("/api/track"), &seed_body()).await,
        post_json(&server.url("/api/track"), "{").await,
        send(Method::GET, &server.url("/api/health"), &[], "").await,
        send(Method::GET, &server.url("/missing"), &[], "").await,
    ] {
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
        assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(
            reply.header("content-security-policy"),
            Some("default-src 'none'; frame-ancestors 'none'")
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn bots_are_answered_but_not_stored() {
    let server = TestCollector::default().await;
    let reply = post_json(
        &server.url("/api/track"),
        r#"{"event":"page_view","userAgent":"Mozilla/5.0 (compatible; Googlebot/2.1)"}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(server.sink.events().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn sink_outage_is_503_with_retry_after_and_readyz_follows() {
    let server = TestCollector::default().await;
    server.sink.set_available(false);
    let reply = post_json(&server.url("/api/track"), &seed_body()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.header("retry-after"), Some("5"));
    assert_eq!(reply.json()["error"]["code"], "unavailable");
    let ready = send(Method::GET, &server.url("/readyz"), &[], "").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let live = send(Method::GET, &server.url("/livez"), &[], "").await;
    assert_eq!(live.status, StatusCode::OK, "liveness ignores the sink");

    server.sink.set_available(true);
    let ready = send(Method::GET, &server.url("/readyz"), &[], "").await;
    assert_eq!(ready.status, StatusCode::OK);
    let reply = post_json(&server.url("/api/track"), &seed_body()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(server.sink.events().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn raw_ip_and_user_agent_never_reach_the_sink() {
    let server = TestCollector::default().await;
    post_json(&server.url("/api/track"), &seed_body()).await;
    post_beacon(
        &server.url("/api/batch"),
        r#"{"site":"x.com","events":[{"event":"page_view","page":"https://x.com/a"}]}"#,
    )
    .await;
    let events = server.sink.events();
    assert_eq!(events.len(), 2);
    for e in &events {
        let doc = String::from_utf8(protocol::event::encode(e).expect("encode")).expect("utf8");
        assert!(!doc.contains("127.0.0.1"), "{doc}");
        assert!(!doc.contains("Mozilla"), "{doc}");
        assert!(!doc.contains("KHTML"), "{doc}");
    }
    server.stop().await;
}
