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
        .body(http_body_util::Empty::<bytes::Bytes>::new())
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
    store
        .insert_batch(events.clone().into())
        .await
        .expect("insert");
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
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .expect("req"),
        )
        .await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
}

async fn call(
    api: &StatsApi,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (StatusCode, serde_json::Value, String) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .expect("request");
    let resp = api.handle(req).await;
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (
        status,
        serde_json::from_str(&text).unwrap_or_default(),
        text,
    )
}

/// Goals through the API, filters and comparison in the query string, CSV of a panel, and a
/// share link that reads one site's stats and nothing else until it is revoked.
#[tokio::test]
async fn goals_filters_csv_and_share_links() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(SqliteConfig::new(dir.path())).expect("open"));
    let events = dataset(300, 6);
    store
        .insert_batch(events.clone().into())
        .await
        .expect("insert");
    let api = StatsApi::new(store, AdminToken::new("t0ken"));
    let (from, to) = (base(), base() + 3 * DAY);
    let site = "example.com";

    // Goals: created once (201), again gives the same (200), listed, counted, deleted.
    let new = r#"{"site":"example.com","kind":"page","value":"/pricing*"}"#;
    let (status, goal, _) = call(&api, "POST", "/api/goals", "t0ken", new).await;
    assert_eq!(status, StatusCode::CREATED, "{goal}");
    let (status, same, _) = call(&api, "POST", "/api/goals", "t0ken", new).await;
    assert_eq!((status, &same["id"]), (StatusCode::OK, &goal["id"]));
    let (status, bad, _) = call(
        &api,
        "POST",
        "/api/goals",
        "t0ken",
        r#"{"site":"example.com","kind":"page","value":"pricing"}"#,
    )
    .await;
    assert_eq!(
        (status, &bad["error"]["field"]),
        (StatusCode::BAD_REQUEST, &serde_json::json!("value"))
    );
    let (_, list, _) = call(&api, "GET", "/api/goals?site=example.com", "t0ken", "").await;
    assert_eq!(list["goals"].as_array().map(Vec::len), Some(1));
    let want_conversions = events
        .iter()
        .filter(|e| e.site == site && e.name == "page_view" && e.path.starts_with("/pricing"))
        .filter(|e| e.ts >= from && e.ts < to)
        .count();
    let stats = format!("/api/stats/goals?site={site}&from={from}&to={to}");
    let (status, g, _) = call(&api, "GET", &stats, "t0ken", "").await;
    assert_eq!(status, StatusCode::OK, "{g}");
    assert_eq!(g["goals"][0]["conversions"], want_conversions as u64);
    let (_, _, csv) = call(&api, "GET", &format!("{stats}&format=csv"), "t0ken", "").await;
    assert_eq!(
        csv,
        format!(
            "kind,value,visitors,conversions,conversion_rate\r\npage,/pricing*,{},{},{}\r\n",
            g["goals"][0]["visitors"], want_conversions, g["goals"][0]["conversionRate"]
        )
    );

    // Filters and comparison from the query string; an unknown dimension is a 400.
    let path = format!(
        "/api/stats/summary?site={site}&from={from}&to={to}&filter=page%3A%2Fpricing&filter=device!%3Amobile&compare=previous"
    );
    let (status, s, _) = call(&api, "GET", &path, "t0ken", "").await;
    assert_eq!(status, StatusCode::OK, "{s}");
    let want = events
        .iter()
        .filter(|e| e.site == site && e.ts >= from && e.ts < to)
        .filter(|e| e.path == "/pricing" && e.device != protocol::Device::Mobile)
        .count();
    assert_eq!(s["events"], want as u64);
    assert_eq!(
        s["filters"],
        serde_json::json!(["page:/pricing", "device!:mobile"])
    );
    assert!(s["previous"]["visits"].is_u64(), "{s}");
    let (status, e, _) = call(
        &api,
        "GET",
        &format!("/api/stats/summary?site={site}&filter=colour%3Ared"),
        "t0ken",
        "",
    )
    .await;
    assert_eq!(
        (status, &e["error"]["field"]),
        (StatusCode::BAD_REQUEST, &serde_json::json!("filter"))
    );

    // A share link: reads its site, not another, not the admin API; revoked → 401.
    let (status, link, _) = call(
        &api,
        "POST",
        "/api/shares",
        "t0ken",
        r#"{"site":"example.com","label":"team"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let token = link["token"].as_str().expect("token").to_string();
    assert!(!token.contains("t0ken"));
    assert!(link["url"].as_str().is_some_and(|u| u.contains("#share=")));
    let (status, access, _) = call(&api, "GET", "/api/access", &token, "").await;
    assert_eq!(
        (status, access),
        (
            StatusCode::OK,
            serde_json::json!({"role":"share","site":"example.com"})
        )
    );
    let (status, _, _) = call(
        &api,
        "GET",
        &format!("/api/stats/summary?site={site}"),
        &token,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for (method, path) in [
        ("GET", "/api/stats/summary?site=other.org"),
        ("GET", "/api/stats/sites"),
        ("GET", "/api/goals?site=example.com"),
        ("POST", "/api/goals"),
        ("GET", "/api/shares"),
        ("DELETE", "/api/shares/0011223344556677"),
    ] {
        let (status, _, body) = call(&api, method, path, &token, new).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
    }
    // A forged signature or a made-up id is nobody.
    let forged = format!("{}.{}", &token[..16], "0".repeat(32));
    assert_eq!(
        call(&api, "GET", "/api/access", &forged, "").await.0,
        StatusCode::UNAUTHORIZED
    );
    let id = link["id"].as_str().expect("id");
    let (status, _, _) = call(&api, "DELETE", &format!("/api/shares/{id}"), "t0ken", "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(
        &api,
        "GET",
        &format!("/api/stats/summary?site={site}"),
        &token,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Goals delete by id.
    let gid = goal["id"].as_str().expect("id");
    let del = format!("/api/goals/{gid}?site=example.com");
    assert_eq!(
        call(&api, "DELETE", &del, "t0ken", "").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&api, "DELETE", &del, "t0ken", "").await.0,
        StatusCode::NOT_FOUND
    );
}
