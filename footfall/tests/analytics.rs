//! Issue 13's analytics through the real binary over real HTTP, as a site owner's dashboard
//! and scripts use them: events in through `/api/batch`, then visits, filters, comparison,
//! entry/exit pages, properties, goals, CSV, share links (stats, live view, revocation) and
//! the streamed raw-event export — every figure computed by hand below.

mod common;

use std::time::Duration;

use common::live::{Auth, LiveClient};
use common::*;

const SITE: &str = "default";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
const DAY: i64 = 24 * 3600 * 1000;

fn send(ff: &Footfall, user_agent: &str, events: serde_json::Value) {
    let body = serde_json::json!({ "site": SITE, "events": events }).to_string();
    match ureq::post(&ff.url("/api/batch"))
        .set("Content-Type", "text/plain")
        .set("User-Agent", user_agent)
        .send_string(&body)
    {
        Ok(resp) => assert_eq!(resp.status(), 202),
        Err(e) => panic!("batch refused: {e}"),
    }
}

/// Two visits, hand-made (times from `t0`):
/// - A (desktop, Europe/Berlin → DE, from google.com): `/` at 0 s, `/pricing` at 30 s, a
///   `signup` (plan=pro) at 40 s, `/thanks` at 60 s, `session_end` at 90 s and again (the
///   tracker sends one at every page hide) — 3 page views, 90 s, entry `/`, exit `/thanks`.
/// - B (iPhone, Europe/Paris → FR, direct): `/blog/x` at 300 s, `session_end` at 330 s — a
///   bounce of 30 s.
///
/// So: 2 visits, bounce rate 50.0, duration (90 + 30) / 2 = 60 s, 4 / 2 = 2.00 views per
/// visit; 8 events.
fn send_visits(ff: &Footfall, t0: i64) {
    let a = |id: &str, name: &str, page: &str, at: i64| {
        serde_json::json!({"event": name, "eventId": format!("analytics-test-{id}"), "page": page, "sessionId": "sa",
            "timezone": "Europe/Berlin", "timestamp": t0 + at * 1000,
            "referrer": "https://www.google.com/search?q=footfall"})
    };
    let mut signup = a("a-3", "signup", "/pricing", 40);
    signup["props"] = serde_json::json!({"plan": "pro"});
    send(
        ff,
        CHROME,
        serde_json::json!([
            a("a-1", "page_view", "/", 0),
            a("a-2", "page_view", "/pricing", 30),
            signup,
            a("a-4", "page_view", "/thanks", 60),
            a("a-5", "session_end", "/thanks", 90),
        ]),
    );
    // The second session_end comes in its own beacon.
    send(
        ff,
        CHROME,
        serde_json::json!([a("a-6", "session_end", "/thanks", 90)]),
    );
    let b = |id: &str, name: &str, at: i64| {
        serde_json::json!({"event": name, "eventId": format!("analytics-test-{id}"), "page": "/blog/x", "sessionId": "sb",
            "timezone": "Europe/Paris", "timestamp": t0 + at * 1000})
    };
    send(
        ff,
        IPHONE,
        serde_json::json!([b("b-1", "page_view", 300), b("b-2", "session_end", 330)]),
    );
}

fn visit_figures(summary: &serde_json::Value) -> (u64, f64, u64, f64) {
    (
        summary["visits"].as_u64().expect("visits"),
        summary["bounceRate"].as_f64().expect("bounceRate"),
        summary["visitDuration"].as_u64().expect("visitDuration"),
        summary["viewsPerVisit"].as_f64().expect("viewsPerVisit"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visits_filters_goals_csv_share_links_and_export_over_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ff = tokio::task::block_in_place(|| Footfall::start(dir.path(), &[]));
    let now = now_ms();
    // Inside today (UTC), so the live view's "today" holds both visits too; at most 330 s
    // ahead of now, which the collector accepts.
    let t0 = (now - 10 * 60_000).max(now.div_euclid(DAY) * DAY);
    let (from, to) = (t0 - 60_000, t0 + 3_600_000);
    let q = format!("site={SITE}&from={from}&to={to}");
    let admin = Some(TOKEN);

    tokio::task::block_in_place(|| {
        send_visits(&ff, t0);

        // Visits and their metrics, unfiltered and filtered (visit-level and event-level).
        let summary = |extra: &str| {
            let a = call(
                "GET",
                &ff.url(&format!("/api/stats/summary?{q}{extra}")),
                admin,
                None,
            );
            assert_eq!(a.status, 200, "{extra}: {}", a.text);
            a.json()
        };
        let all = summary("");
        assert_eq!(all["events"], 8);
        assert_eq!(all["pageviews"], 4);
        assert_eq!(visit_figures(&all), (2, 50.0, 60, 2.0));
        // The property names of the range, for the dashboard's prop.NAME breakdowns.
        assert_eq!(all["props"], serde_json::json!(["plan"]));
        assert!(summary("&filter=country!:DE").get("props").is_none());
        assert_eq!(
            visit_figures(&summary("&filter=country:DE")),
            (1, 0.0, 90, 3.0)
        );
        assert_eq!(
            visit_figures(&summary("&filter=country!:DE")),
            (1, 100.0, 30, 1.0)
        );
        let pricing = summary("&filter=page:/pricing");
        assert_eq!(visit_figures(&pricing), (1, 0.0, 90, 3.0));
        assert_eq!(pricing["pageviews"], 1, "the matching events only");
        assert_eq!(pricing["filters"], serde_json::json!(["page:/pricing"]));
        assert_eq!(visit_figures(&summary("&filter=device:mobile")).0, 1);
        assert_eq!(visit_figures(&summary("&filter=referrer:google.com")).0, 1);
        assert_eq!(visit_figures(&summary("&filter=prop.plan:pro")).0, 1);
        assert_eq!(
            visit_figures(&summary("&filter=entry_page:/blog/*")),
            (1, 100.0, 30, 1.0)
        );
        assert_eq!(
            visit_figures(&summary("&filter=country:DE&filter=device:mobile")).0,
            0
        );

        // Comparison: the hour before holds nothing.
        let compared = summary("&compare=previous");
        assert_eq!(visit_figures(&compared), (2, 50.0, 60, 2.0));
        assert_eq!(visit_figures(&compared["previous"]), (0, 0.0, 0, 0.0));
        assert_eq!(compared["previous"]["to"], all["from"]);

        // Entry and exit pages, and a custom property.
        let rows = |dimension: &str| -> Vec<(String, u64)> {
            let a = call(
                "GET",
                &ff.url(&format!("/api/stats/breakdown?{q}&dimension={dimension}")),
                admin,
                None,
            );
            assert_eq!(a.status, 200, "{dimension}: {}", a.text);
            a.rows()
        };
        let pair = |v: &str, n: u64| (v.to_string(), n);
        assert_eq!(rows("entry_page"), vec![pair("/", 1), pair("/blog/x", 1)]);
        assert_eq!(
            rows("exit_page"),
            vec![pair("/blog/x", 1), pair("/thanks", 1)]
        );
        assert_eq!(rows("prop.plan"), vec![pair("pro", 1)]);
        assert_eq!(rows("country"), vec![pair("DE", 3), pair("FR", 1)]);

        // CSV of a panel, same range and filters.
        let csv = call(
            "GET",
            &ff.url(&format!(
                "/api/stats/breakdown?{q}&dimension=entry_page&format=csv"
            )),
            admin,
            None,
        );
        assert_eq!(csv.status, 200);
        assert_eq!(csv.header("content-type"), "text/csv; charset=utf-8");
        assert_eq!(
            csv.header("content-disposition"),
            "attachment; filename=\"entry_page.csv\""
        );
        assert_eq!(csv.text, "value,count\r\n/,1\r\n/blog/x,1\r\n");

        // Goals: defined over the API, converting once.
        let goal = |body: &str| call("POST", &ff.url("/api/goals"), admin, Some(body));
        let signup = goal(r#"{"site":"default","kind":"event","value":"signup"}"#);
        assert_eq!(signup.status, 201, "{}", signup.text);
        assert_eq!(
            goal(r#"{"site":"default","kind":"event","value":"signup"}"#).status,
            200,
            "the same goal again is the existing one"
        );
        assert_eq!(
            goal(r#"{"site":"default","kind":"page","value":"/thanks*"}"#).status,
            201
        );
        assert_eq!(
            goal(r#"{"site":"default","kind":"page","value":"no slash"}"#).status,
            400
        );
        let stats = call(
            "GET",
            &ff.url(&format!("/api/stats/goals?{q}")),
            admin,
            None,
        );
        assert_eq!(stats.status, 200, "{}", stats.text);
        let stats = stats.json();
        assert_eq!(stats["visitors"], 2);
        let goals = stats["goals"].as_array().expect("goals");
        assert_eq!(goals.len(), 2);
        for g in goals {
            assert_eq!(
                (&g["visitors"], &g["conversions"], &g["conversionRate"]),
                (
                    &serde_json::json!(1),
                    &serde_json::json!(1),
                    &serde_json::json!(50.0)
                ),
                "{g}"
            );
        }
        let filtered = call(
            "GET",
            &ff.url(&format!("/api/stats/goals?{q}&filter=country:FR")),
            admin,
            None,
        )
        .json();
        assert_eq!(filtered["goals"][0]["conversions"], 0);
        let id = signup.json()["id"].as_str().expect("id").to_string();
        assert_eq!(
            call(
                "DELETE",
                &ff.url(&format!("/api/goals/{id}?site={SITE}")),
                admin,
                None
            )
            .status,
            204
        );
        let left = call(
            "GET",
            &ff.url(&format!("/api/goals?site={SITE}")),
            admin,
            None,
        );
        assert_eq!(left.json()["goals"].as_array().map(Vec::len), Some(1));

        // The raw events, streamed.
        let export = call(
            "GET",
            &ff.url(&format!("/api/export/events?{q}")),
            admin,
            None,
        );
        assert_eq!(export.status, 200, "{}", export.text);
        assert_eq!(export.header("content-type"), "application/x-ndjson");
        assert_eq!(export.header("transfer-encoding"), "chunked");
        assert!(export
            .header("content-disposition")
            .starts_with("attachment; filename=\"events-default-"));
        let lines: Vec<serde_json::Value> = export
            .text
            .lines()
            .map(|l| serde_json::from_str(l).expect("one event per line"))
            .collect();
        assert_eq!(lines.len(), 8);
        let ts: Vec<i64> = lines
            .iter()
            .map(|e| e["ts"].as_i64().expect("ts"))
            .collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]), "oldest first");
        assert!(lines.iter().any(|e| e["props"]["plan"] == "pro"));
        let array = call(
            "GET",
            &ff.url(&format!("/api/export/events?{q}&format=json")),
            admin,
            None,
        );
        assert_eq!(
            array.header("content-type"),
            "application/json; charset=utf-8"
        );
        assert_eq!(array.json().as_array().map(Vec::len), Some(8));
        let empty = call(
            "GET",
            &ff.url(&format!(
                "/api/export/events?site={SITE}&from=0&to=1000&format=json"
            )),
            admin,
            None,
        );
        assert_eq!(empty.json(), serde_json::json!([]));
        for (bad, field) in [("&format=csv", "format"), ("&filter=page:/", "filter")] {
            let a = call(
                "GET",
                &ff.url(&format!("/api/export/events?{q}{bad}")),
                admin,
                None,
            );
            assert_eq!(a.status, 400, "{bad}");
            assert_eq!(a.json()["error"]["field"], field);
        }
    });

    // Share links: read-only stats and live view of one site, revocable.
    let share = tokio::task::block_in_place(|| {
        call(
            "POST",
            &ff.url("/api/shares"),
            admin,
            Some(r#"{"site":"default","label":"team"}"#),
        )
    });
    assert_eq!(share.status, 201, "{}", share.text);
    let share = share.json();
    let token = share["token"].as_str().expect("token").to_string();
    let share_id = share["id"].as_str().expect("id").to_string();
    assert!(share["url"]
        .as_str()
        .expect("url")
        .ends_with(&format!("#share={token}")));
    let shared = Some(token.as_str());
    tokio::task::block_in_place(|| {
        let access = call("GET", &ff.url("/api/access"), shared, None);
        assert_eq!(
            access.json(),
            serde_json::json!({"role": "share", "site": "default"})
        );
        let own = call(
            "GET",
            &ff.url(&format!("/api/stats/summary?{q}&filter=country:DE")),
            shared,
            None,
        );
        assert_eq!(own.status, 200);
        assert_eq!(visit_figures(&own.json()), (1, 0.0, 90, 3.0));
        for (method, path) in [
            ("GET", "/api/stats/summary?site=other.test".to_string()),
            ("GET", "/api/stats/sites".to_string()),
            ("GET", format!("/api/goals?site={SITE}")),
            ("GET", format!("/api/shares?site={SITE}")),
            ("GET", format!("/api/export/events?{q}")),
            ("POST", "/api/ws-ticket?site=other.test".to_string()),
        ] {
            let a = call(method, &ff.url(&path), shared, None);
            assert_eq!(a.status, 403, "{method} {path}: {}", a.text);
        }
    });
    let ticket = |token: Option<&str>| {
        let a = call("POST", &ff.url("/api/ws-ticket"), token, None);
        assert_eq!(a.status, 200, "{}", a.text);
        a.json()["ticket"].as_str().expect("ticket").to_string()
    };
    let (t1, t2) = tokio::task::block_in_place(|| (ticket(shared), ticket(shared)));
    let (mut live, _) = LiveClient::connect_as(&ff.base, SITE, Auth::Ticket(&t1))
        .await
        .expect("a share link watches its own site");
    assert_eq!(
        LiveClient::connect_as(&ff.base, "other.test", Auth::Ticket(&t2))
            .await
            .err(),
        Some(403),
        "its ticket opens no other site"
    );
    assert_eq!(
        LiveClient::connect_as(&ff.base, "other.test", Auth::Bearer(&token))
            .await
            .err(),
        Some(403)
    );
    // Today's visit figures reach the live view from the store within seconds, equal to
    // the summary of today.
    let today = live
        .until(Duration::from_secs(10), |t| t.metrics.today.visits >= 2)
        .await
        .expect("today's visits in the live view")
        .metrics
        .today;
    assert_eq!(
        (
            today.visits,
            today.bounce_rate,
            today.visit_duration,
            today.views_per_visit
        ),
        (2, 50.0, 60, 2.0)
    );

    tokio::task::block_in_place(|| {
        let revoked = call(
            "DELETE",
            &ff.url(&format!("/api/shares/{share_id}")),
            admin,
            None,
        );
        assert_eq!(revoked.status, 204);
        let a = call(
            "GET",
            &ff.url(&format!("/api/stats/summary?{q}")),
            shared,
            None,
        );
        assert_eq!(a.status, 401, "a revoked link reads nothing");
        assert_eq!(
            call("POST", &ff.url("/api/ws-ticket"), shared, None).status,
            401
        );
    });
    drop(live);
    tokio::task::block_in_place(|| drop(ff));
}
