//! Health, readiness, metrics and graceful shutdown. (Static files: `footfall-http`.)

mod common;

use std::time::Duration;

use common::*;
use http::{Method, StatusCode};

#[tokio::test]
async fn health_shape() {
    let server = TestCollector::default().await;
    let reply = send(Method::GET, &server.url("/api/health"), &[], "").await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["success"], true);
    assert_eq!(body["status"], "healthy");
    let ts = body["timestamp"].as_str().expect("timestamp string");
    let parsed = protocol::time::parse_rfc3339(ts).expect("RFC 3339");
    assert!((parsed - now_ms()).abs() < 60_000);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    server.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_and_events() {
    let server = TestCollector::default().await;
    post_json(&server.url("/api/track"), r#"{"event":"page_view"}"#).await;
    post_json(&server.url("/api/track"), r#"{"event":""}"#).await;
    let reply = send(Method::GET, &server.url("/metrics"), &[], "").await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = reply.text();
    for needle in [
        "footfall_events_accepted_total 1",
        r#"footfall_events_rejected_total{code="required"} 1"#,
        r#"footfall_http_requests_total{route="track",status="200"} 1"#,
        r#"footfall_http_requests_total{route="track",status="400"} 1"#,
        "footfall_sink_ready 1",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let server = TestCollector::default().await;
    // A request whose body arrives slowly is in flight when shutdown starts.
    let addr = server.addr;
    let slow = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let body = r#"{"event":"page_view"}"#;
        let head = format!(
            "POST /api/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nUser-Agent: {CHROME}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.expect("head");
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream.write_all(body.as_bytes()).await.expect("body");
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sink = server.sink.clone();
    server.stop().await;
    let response = slow.await.expect("client task");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(sink.events().len(), 1);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed after shutdown"
    );
}
