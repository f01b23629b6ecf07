//! URLs and status mapping of [`super`], on the host.

use super::*;
use protocol::stats::{GoalKind, NewGoal};

const SPAN: Span = Span { from: 1, to: 2 };

fn scope(filters: &[Filter]) -> Scope<'_> {
    Scope {
        site: "shop.example",
        span: SPAN,
        filters,
    }
}

#[test]
fn urls() {
    assert_eq!(
        summary_path(scope(&[]), None),
        "/api/stats/summary?site=shop.example&from=1&to=2"
    );
    let a_b = Scope {
        site: "a b",
        ..scope(&[])
    };
    assert_eq!(
        timeseries_path(a_b, Interval::Hour, 0, None, false),
        "/api/stats/timeseries?site=a%20b&from=1&to=2&interval=hour&tz=Z"
    );
    // East of UTC is positive: India (UTC+05:30) is 330, California (UTC−08:00) −480.
    assert!(
        timeseries_path(scope(&[]), Interval::Day, 330, None, false).ends_with("&tz=%2B05%3A30")
    );
    assert!(
        timeseries_path(scope(&[]), Interval::Day, -480, None, false).ends_with("&tz=-08%3A00")
    );
    assert_eq!(
        breakdown_path(scope(&[]), &Dimension::UtmSource.into(), 10, false),
        "/api/stats/breakdown?site=shop.example&from=1&to=2&dimension=utm_source&limit=10"
    );
    assert_eq!(
        breakdown_path(scope(&[]), &Field::Prop("plan tier".into()), 1000, true),
        "/api/stats/breakdown?site=shop.example&from=1&to=2&dimension=prop.plan%20tier&limit=1000&format=csv"
    );
    assert_eq!(
        ws_url("http://127.0.0.1:8080", "s", "t+/="),
        "ws://127.0.0.1:8080/ws?site=s&ticket=t%2B%2F%3D"
    );
    assert_eq!(
        registry_site_path("shop.example:8080"),
        "/api/sites/shop.example%3A8080"
    );
    assert_eq!(
        ws_url("https://stats.example", "s", "t"),
        "wss://stats.example/ws?site=s&ticket=t"
    );
    // Every panel is a distinct dimension the API knows, and none is the legacy `entry`.
    let mut tables = TABLES.to_vec();
    tables.sort();
    tables.dedup();
    assert_eq!(tables.len(), TABLES.len());
    assert!(tables.iter().all(|d| Dimension::ALL.contains(d)));
    assert!(!tables.contains(&Dimension::Entry));
}

#[test]
fn filters_and_comparison_go_into_every_stats_url() {
    let filters = [
        Filter::is(Dimension::Page, "/blog/*"),
        Filter::is_not(Dimension::Country, "DE"),
        Filter::is(Field::Prop("plan".into()), "pro:max"),
    ];
    let tail = "&filter=page%3A%2Fblog%2F%2A&filter=country%21%3ADE&filter=prop.plan%3Apro%3Amax";
    assert_eq!(
        summary_path(scope(&filters), Some(Compare::Previous)),
        format!("/api/stats/summary?site=shop.example&from=1&to=2{tail}&compare=previous")
    );
    assert_eq!(
        timeseries_path(scope(&filters), Interval::Day, 0, Some(Compare::Year), false),
        format!(
            "/api/stats/timeseries?site=shop.example&from=1&to=2{tail}&interval=day&tz=Z&compare=year"
        )
    );
    assert_eq!(
        goal_stats_path(scope(&filters), true),
        format!("/api/stats/goals?site=shop.example&from=1&to=2{tail}&format=csv")
    );
    // What the server reads back is what was meant.
    for (f, part) in filters.iter().zip(tail.split("&filter=").skip(1)) {
        assert_eq!(Filter::parse(&decode_component(part)).as_ref(), Ok(f));
    }
}

#[test]
fn management_urls() {
    assert_eq!(goal_path("00aa", "a b"), "/api/goals/00aa?site=a%20b");
    assert_eq!(shares_path("s"), "/api/shares?site=s");
    assert_eq!(share_path("0f/x"), "/api/shares/0f%2Fx");
    assert_eq!(
        export_events_path("s", SPAN),
        "/api/export/events?site=s&from=1&to=2&format=ndjson"
    );
    let body = serde_json::to_string(&NewGoal {
        site: "s".into(),
        kind: GoalKind::Page,
        value: "/thanks/*".into(),
    })
    .expect("json");
    assert_eq!(body, r#"{"site":"s","kind":"page","value":"/thanks/*"}"#);
}

#[test]
fn decoding_reverses_encoding() {
    for s in ["", "/blog/*", "a b+c", "ü/€?&=#", "100%"] {
        assert_eq!(decode_component(&encode(s)), s);
    }
    assert_eq!(decode_component("a+b%20c"), "a b c");
    // Broken escapes are kept, never a panic.
    assert_eq!(decode_component("%"), "%");
    assert_eq!(decode_component("%zz%4"), "%zz%4");
    assert_eq!(decode_component("%C3"), "\u{fffd}");
}

#[test]
fn statuses_map_to_what_the_ui_shows() {
    let ok: Result<Summary, _> = decode(
        200,
        r#"{"site":"s","from":"x","to":"y","pageviews":3,"visitors":2,"sessions":2,
           "events":5,"eventsByName":{"page_view":3,"signup":2}}"#,
    );
    let ok = ok.expect("summary");
    assert_eq!(ok.pageviews, 3);
    assert_eq!(ok.events_by_name.get("signup"), Some(&2));
    assert_eq!(decode::<Summary>(401, ""), Err(ApiError::Unauthorized));
    assert_eq!(decode::<Summary>(403, ""), Err(ApiError::Forbidden));
    assert_eq!(decode::<Summary>(404, "<html>"), Err(ApiError::NotFound));
    assert_eq!(
        decode::<Summary>(
            400,
            r#"{"error":{"code":"invalid_parameter","message":"bad from"}}"#
        ),
        Err(ApiError::Status(400, "bad from".into()))
    );
    assert!(matches!(
        decode::<Summary>(200, "not json"),
        Err(ApiError::Decode(_))
    ));
    assert_eq!(check(204, ""), Ok(()));
}

#[test]
fn exports_are_the_panels_csv_with_range_and_filters() {
    let filters = [Filter::is(Dimension::Country, "DE")];
    let day = Scope {
        span: Span {
            from: 0,
            to: 24 * 3_600_000,
        },
        ..scope(&filters)
    };
    assert_eq!(
        Export::Breakdown(Dimension::ExitPage.into()).path(day, 60),
        "/api/stats/breakdown?site=shop.example&from=0&to=86400000&filter=country%3ADE\
         &dimension=exit_page&limit=1000&format=csv"
    );
    assert_eq!(
        Export::Series.path(day, 60),
        "/api/stats/timeseries?site=shop.example&from=0&to=86400000&filter=country%3ADE\
         &interval=hour&tz=%2B01%3A00&format=csv"
    );
    assert!(Export::Goals
        .path(day, 0)
        .ends_with("&filter=country%3ADE&format=csv"));
    // Raw events are the whole range, unfiltered (the export endpoint takes no filters).
    assert_eq!(
        Export::RawEvents.path(day, 0),
        "/api/export/events?site=shop.example&from=0&to=86400000&format=ndjson"
    );
    assert_eq!(
        Export::Breakdown(Field::Prop("plan".into())).name(),
        "prop.plan"
    );
    assert_eq!(Export::RawEvents.extension(), "ndjson");
    assert_eq!(Export::Goals.extension(), "csv");
}
