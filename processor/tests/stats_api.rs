//! The history endpoints over HTTP shapes: parameters, errors, JSON fields.

mod common;

use std::sync::Arc;

use common::data::{base, dataset, DAY};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use processor::store::SqliteConfig;
use processor::{AdminToken, SqliteStore, StatsApi, Store};

async fn get(api: &StatsApi, path: &str) -> (StatusCode, serde_json::Value) {
    let req = Request::get(path)
        .header("authorization", "Bearer t0ken")
        .body(())
        .expect("request");
    let resp = api.handle(req).await;
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).expect("json"))
}

#[tokio::test]
async fn timeseries_and_breakdown_endpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(SqliteConfig::new(dir.path())).expect("open"));
    let events = dataset(200, 5);
    store.insert_batch(events.clone()).await.expect("insert");
    let api = StatsApi::new(store, AdminToken::new("t0ken"));
    let (from, to) = (base(), base() + 3 * DAY);

    let (status, body) = get(
        &api,
        &format!(
            "/api/stats/timeseries?site=example.com&from={from}&to={to}&interval=day&tz=%2B05:30"
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["interval"], "day");
    assert_eq!(body["tz"], "+05:30");
    let points = body["points"].as_array().expect("points");
    assert_eq!(points.len(), 4, "3 UTC days touch 4 local days at +05:30");
    assert_eq!(points[0]["time"], "2026-03-01T00:00:00.000+05:30");
    let summed: u64 = points
        .iter()
        .map(|p| p["events"].as_u64().expect("n"))
        .sum();
    let (_, summary) = get(
        &api,
        &format!("/api/stats/summary?site=example.com&from={from}&to={to}"),
    )
    .await;
    assert_eq!(summed, summary["events"].as_u64().expect("events"));

    // Default interval: hours for a 1-day range.
    let (_, body) = get(
        &api,
        &format!(
            "/api/stats/timeseries?site=example.com&from={from}&to={}",
            from + DAY
        ),
    )
    .await;
    assert_eq!(body["interval"], "hour");
    assert_eq!(body["points"].as_array().map(Vec::len), Some(24));

    let (status, body) = get(
        &api,
        &format!("/api/stats/breakdown?site=example.com&from=2026-03-01T00:00:00Z&to={to}&dimension=page&limit=2"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["dimension"], "page");
    assert_eq!(body["rows"].as_array().map(Vec::len), Some(2));
    assert!(body["rows"][0]["count"].as_u64() >= body["rows"][1]["count"].as_u64());
    assert!(body["total"].as_u64() >= body["rows"][0]["count"].as_u64());

    for (query, field) in [
        ("breakdown?dimension=colour", "dimension"),
        ("breakdown?dimension=page&limit=0", "limit"),
        ("timeseries?interval=week", "interval"),
        ("timeseries?tz=Europe/Paris", "tz"),
        // 2 days of minutes: more points than a series may have.
        ("timeseries?from=0&to=172800000&interval=minute", "interval"),
        // Longer than the longest range (2000 days).
        ("summary?from=0&to=999999999999", "from"),
        ("summary?from=0&to=86400000000000000", "to"),
    ] {
        let (status, body) = get(&api, &format!("/api/stats/{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["error"]["field"], field, "{query}");
    }

    let unauthenticated = api
        .handle(
            Request::get("/api/stats/breakdown?dimension=page")
                .body(())
                .expect("req"),
        )
        .await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
}
