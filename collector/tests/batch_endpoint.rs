//! `POST /api/batch`: the tracker's endpoint — text/plain beacons, gzip, partial acceptance.

mod common;

use std::io::Write;

use common::*;
use http::{Method, StatusCode};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("write");
    enc.finish().expect("finish")
}

fn batch(n: usize) -> String {
    let events: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"event":"page_view","eventId":"evt-{i:08}","page":"https://shop.example/p/{i}?utm_source=news","sessionId":"s1","timestamp":{}}}"#,
                now_ms()
            )
        })
        .collect();
    format!(
        r#"{{"site":"shop.example","sentAt":{},"events":[{}]}}"#,
        now_ms(),
        events.join(",")
    )
}

#[tokio::test]
async fn text_plain_beacon_is_accepted_with_202() {
    let server = TestCollector::default().await;
    let reply = post_beacon(&server.url("/api/batch"), &batch(3)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let body = reply.json();
    assert_eq!(body["success"], true);
    assert_eq!(body["accepted"], 3);
    assert_eq!(body["rejected"].as_array().map(Vec::len), Some(0));
    let events = server.sink.events();
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].event_id, "evt-00000002");
    assert_eq!(events[2].path, "/p/2");
    assert_eq!(events[2].utm_source.as_deref(), Some("news"));
    assert_eq!(events[2].site, "shop.example");
    server.stop().await;
}

#[tokio::test]
async fn gzip_batches_inflate_and_bombs_are_413() {
    let server = TestCollector::default().await;
    let reply = send(
        Method::POST,
        &server.url("/api/batch"),
        &[
            ("content-type", "text/plain"),
            ("content-encoding", "gzip"),
            ("user-agent", CHROME),
        ],
        gzip(batch(50).as_bytes()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    assert_eq!(reply.json()["accepted"], 50);

    // 8 MiB of spaces inside valid JSON compresses to a few KiB: over the 1 MiB inflate cap.
    let mut bomb = br#"{"site":"s","events":[{"event":"x"}]"#.to_vec();
    bomb.extend(std::iter::repeat_n(b' ', 8 * 1024 * 1024));
    bomb.push(b'}');
    let reply = send(
        Method::POST,
        &server.url("/api/batch"),
        &[("content-type", "text/plain"), ("content-encoding", "gzip")],
        gzip(&bomb),
    )
    .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);

    let reply = send(
        Method::POST,
        &server.url("/api/batch"),
        &[("content-type", "text/plain"), ("content-encoding", "gzip")],
        "definitely not gzip",
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["code"], "invalid_gzip");
    server.stop().await;
}

#[tokio::test]
async fn partially_valid_batch_stores_the_good_and_lists_the_bad() {
    let server = TestCollector::default().await;
    let body = r#"{"site":"s.example","events":[
        {"event":"page_view","page":"/ok"},
        {"event":"page_view","props":{"nested":{"no":1}}},
        {"event":"click","target":{"tag":"a","href":"/x","text":"Go"}}
    ]}"#;
    let reply = post_beacon(&server.url("/api/batch"), body).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let json = reply.json();
    assert_eq!(json["accepted"], 2);
    assert_eq!(json["rejected"][0]["index"], 1);
    assert_eq!(json["rejected"][0]["field"], "props.nested");
    assert_eq!(server.sink.events().len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn an_event_of_the_wrong_shape_is_refused_alone_naming_its_field() {
    let server = TestCollector::default().await;
    let body = r#"{"site":"s.example","events":[
        {"event":"page_view","page":"/a"},
        {"event":"page_view","page":"/b"},
        {"event":"click","page":"/b","target":{"tag":"button"}},
        {"event":"page_view","page":{"path":"/c"}}
    ]}"#;
    let reply = post_beacon(&server.url("/api/batch"), body).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let json = reply.json();
    assert_eq!(json["accepted"], 3);
    assert_eq!(json["rejected"][0]["index"], 3);
    assert_eq!(json["rejected"][0]["field"], "page");
    assert_eq!(json["rejected"][0]["code"], "invalid_type");
    assert_eq!(server.sink.events().len(), 3);

    // Nothing usable: 400 naming the event and the field.
    let reply = post_beacon(
        &server.url("/api/batch"),
        r#"{"site":"s","events":[{"event":"x","page":7},{"event":"y","sessionId":true}]}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["field"], "events[0].page");
    assert_eq!(reply.json()["error"]["code"], "invalid_type");
    // The envelope itself.
    let reply = post_beacon(
        &server.url("/api/batch"),
        r#"{"site":["s"],"events":[{"event":"x"}]}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["field"], "site");
    server.stop().await;
}

#[tokio::test]
async fn all_invalid_is_400_with_the_batch_field_path() {
    let server = TestCollector::default().await;
    let reply = post_beacon(
        &server.url("/api/batch"),
        r#"{"site":"s","events":[{"event":"ok"},{"event":"<bad>"}]}"#,
    )
    .await;
    // One valid event: 202. Now only invalid ones:
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let reply = post_beacon(
        &server.url("/api/batch"),
        r#"{"site":"s","events":[{"event":"<bad>"}]}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["field"], "events[0].event");
    server.stop().await;
}

#[tokio::test]
async fn event_count_caps() {
    let server = TestCollector::default().await;
    let reply = post_beacon(&server.url("/api/batch"), &batch(100)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let reply = post_beacon(&server.url("/api/batch"), &batch(101)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["code"], "too_many_events");
    let reply = post_beacon(&server.url("/api/batch"), r#"{"site":"s","events":[]}"#).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    server.stop().await;
}

#[tokio::test]
async fn clock_skew_is_corrected_with_sent_at() {
    let server = TestCollector::default().await;
    let hour = 3_600_000;
    let now = now_ms();
    // The browser's clock runs 3 hours fast; the event happened 2 s before sending.
    let body = format!(
        r#"{{"site":"s","sentAt":{},"events":[{{"event":"page_view","timestamp":{}}}]}}"#,
        now + 3 * hour,
        now + 3 * hour - 2000
    );
    let reply = post_beacon(&server.url("/api/batch"), &body).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let ts = server.sink.events()[0].ts;
    assert!((ts - (now - 2000)).abs() < 5_000, "ts {ts} vs now {now}");
    server.stop().await;
}
