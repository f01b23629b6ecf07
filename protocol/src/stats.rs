//! The stats API's answers (`GET /api/stats/...`, documented in `docs/API.md`): serde types
//! only, shared by the server that serialises them (`processor`) and the dashboard that reads
//! them (`dashboard-yew`, built with `default-features = false`), so the two cannot drift.
//!
//! The API is additive-only: a field added later must be `#[serde(default)]` here, so a
//! dashboard of the new build still reads an older server's answer.
//!
//! Conventions every endpoint follows:
//! - times are RFC 3339 strings (see [`crate::time`]) next to epoch milliseconds where a client
//!   computes with them;
//! - a UTC offset is in **minutes east of UTC** (`+05:30` is 330, `-08:00` is −480), the sign
//!   RFC 3339 writes. (`Date.getTimezoneOffset()` is the opposite sign; the dashboard converts
//!   once, where it reads it.)

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS};

mod filter;

pub use filter::{
    wildcard_match, Field, Filter, FilterError, FilterOp, MAX_FILTERS, MAX_FILTER_VALUE_LEN,
    PROP_PREFIX,
};
/// The longest range one stats query may cover: 2000 days (about 5½ years), as many points as
/// a daily time series may have. Longer ranges are refused with a 400 naming the field.
pub const MAX_RANGE_MS: i64 = 2000 * DAY_MS;
/// The earliest time a query may name: the Unix epoch (no event is older).
pub const EARLIEST_MS: i64 = 0;
/// The latest time a query may name: the last millisecond of year 9999, the end of what
/// RFC 3339 can write. Together with [`MAX_RANGE_MS`] this keeps every computation on a
/// range far from the limits of `i64`.
pub const LATEST_MS: i64 = 253_402_300_799_999;

/// Bucket size of a time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Minute,
    Hour,
    Day,
}

impl Interval {
    pub const ALL: [Interval; 3] = [Interval::Minute, Interval::Hour, Interval::Day];

    /// The name the API uses (`?interval=`).
    pub fn name(self) -> &'static str {
        match self {
            Interval::Minute => "minute",
            Interval::Hour => "hour",
            Interval::Day => "day",
        }
    }

    pub fn from_name(name: &str) -> Option<Interval> {
        Interval::ALL.into_iter().find(|i| i.name() == name)
    }

    pub fn ms(self) -> i64 {
        match self {
            Interval::Minute => MINUTE_MS,
            Interval::Hour => HOUR_MS,
            Interval::Day => DAY_MS,
        }
    }

    /// The interval a series gets when the request names none, and the one the dashboard
    /// asks for: minutes up to 2 hours (≤ 120 points), hours up to 3 days (≤ 72), days beyond.
    /// Both sides use this one definition, so a chart and a bare API call agree.
    pub fn default_for(range_ms: i64) -> Interval {
        if range_ms <= 2 * HOUR_MS {
            Interval::Minute
        } else if range_ms <= 3 * DAY_MS {
            Interval::Hour
        } else {
            Interval::Day
        }
    }
}

/// What a breakdown can be grouped by and a filter can test (`?dimension=`, `?filter=`),
/// besides custom properties (see [`Field`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Every event, by name (custom events included).
    Event,
    /// Page views by path.
    Page,
    /// The path of each `session_start` (counted from rollups; kept for older clients —
    /// [`Dimension::EntryPage`] counts visits by their first page view).
    Entry,
    /// Page views by referrer host; [`DIRECT`] when there is none.
    Referrer,
    /// Page views by `utm_source` (events without one are not counted here).
    UtmSource,
    Device,
    Browser,
    Os,
    /// Page views by country (geoip database, else the time zone); [`UNKNOWN`] when none.
    Country,
    /// Visits by the path of their first page view.
    EntryPage,
    /// Visits by the path of their last page view.
    ExitPage,
    UtmMedium,
    UtmCampaign,
    /// ISO 3166-2 subdivision code (`DE-BE`), from the geoip database only.
    Region,
    /// City name, from the geoip database only.
    City,
}

/// Label of page views without an external referrer.
pub const DIRECT: &str = "(direct)";
/// Label of page views whose country is unknown.
pub const UNKNOWN: &str = "(unknown)";

impl Dimension {
    pub const ALL: [Dimension; 15] = [
        Dimension::Event,
        Dimension::Page,
        Dimension::Entry,
        Dimension::Referrer,
        Dimension::UtmSource,
        Dimension::Device,
        Dimension::Browser,
        Dimension::Os,
        Dimension::Country,
        Dimension::EntryPage,
        Dimension::ExitPage,
        Dimension::UtmMedium,
        Dimension::UtmCampaign,
        Dimension::Region,
        Dimension::City,
    ];

    /// Page paths: `*` in a filter value is a wildcard here.
    pub fn is_page_like(self) -> bool {
        matches!(
            self,
            Dimension::Page | Dimension::Entry | Dimension::EntryPage | Dimension::ExitPage
        )
    }

    /// A property of the whole visit (its source, location, device, entry and exit page)
    /// rather than of each event. Filtering by one keeps whole visits; see `docs/API.md`.
    pub fn is_visit_level(self) -> bool {
        !matches!(self, Dimension::Event | Dimension::Page | Dimension::Entry)
    }

    /// The name the API uses (`?dimension=`), the same string serde writes.
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Event => "event",
            Dimension::Page => "page",
            Dimension::Entry => "entry",
            Dimension::Referrer => "referrer",
            Dimension::UtmSource => "utm_source",
            Dimension::Device => "device",
            Dimension::Browser => "browser",
            Dimension::Os => "os",
            Dimension::Country => "country",
            Dimension::EntryPage => "entry_page",
            Dimension::ExitPage => "exit_page",
            Dimension::UtmMedium => "utm_medium",
            Dimension::UtmCampaign => "utm_campaign",
            Dimension::Region => "region",
            Dimension::City => "city",
        }
    }

    pub fn from_name(name: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// `compare=`: which earlier range a summary or time series is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compare {
    /// The range of the same length just before (`[from − len, from)`).
    Previous,
    /// The same range one year earlier (365 days, or 366 when a 29 February lies between).
    Year,
}

impl Compare {
    pub fn name(self) -> &'static str {
        match self {
            Compare::Previous => "previous",
            Compare::Year => "year",
        }
    }

    pub fn from_name(name: &str) -> Option<Compare> {
        [Compare::Previous, Compare::Year]
            .into_iter()
            .find(|c| c.name() == name)
    }
}

/// Answer of `GET /api/stats/summary`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub site: String,
    /// The range, RFC 3339 UTC.
    pub from: String,
    pub to: String,
    pub pageviews: u64,
    /// Distinct visitor ids in the range. Anonymous ids rotate daily, so a visitor who comes
    /// back on another day counts again — the price of not tracking people across days.
    pub visitors: u64,
    pub sessions: u64,
    /// Stored events of every type.
    pub events: u64,
    /// Stored events per event name.
    pub events_by_name: BTreeMap<String, u64>,
    /// Visits (tracker sessions with at least one page view) that started in the range.
    #[serde(default)]
    pub visits: u64,
    /// % of those visits with exactly one page view, 0–100, one decimal.
    #[serde(default)]
    pub bounce_rate: f64,
    /// Mean seconds from the first to the last event of those visits, rounded.
    #[serde(default)]
    pub visit_duration: u64,
    /// Page views of those visits / visits, two decimals.
    #[serde(default)]
    pub views_per_visit: f64,
    /// The filters applied (as sent, normalised), empty when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
    /// Names of the custom properties that events of the range carry (same filters), most
    /// used first, at most [`MAX_PROP_NAMES`]: what a `prop.NAME` breakdown can be asked for,
    /// so a client can offer them instead of making the user guess. Empty when none (or from
    /// a server that does not list them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub props: Vec<String>,
    /// With `compare=`: the same figures for the earlier range (its own `from`/`to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Box<Summary>>,
}

/// Most property names a [`Summary`] lists.
pub const MAX_PROP_NAMES: usize = 100;

/// One point of a time series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// Bucket start, local RFC 3339 time at the query's offset.
    pub time: String,
    /// Bucket start, epoch milliseconds.
    pub ts: i64,
    pub pageviews: u64,
    pub visitors: u64,
    pub sessions: u64,
    pub events: u64,
    /// Visits that started in this bucket, and their metrics (as in [`Summary`]).
    #[serde(default)]
    pub visits: u64,
    #[serde(default)]
    pub bounce_rate: f64,
    #[serde(default)]
    pub visit_duration: u64,
    #[serde(default)]
    pub views_per_visit: f64,
}

/// Answer of `GET /api/stats/timeseries`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeseries {
    pub site: String,
    pub from: String,
    pub to: String,
    pub interval: Interval,
    /// The offset the buckets are aligned to, as `Z` or `+05:30`.
    pub tz: String,
    /// Every bucket of the range, oldest first (empty buckets included).
    pub points: Vec<Point>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
    /// With `compare=`: the earlier range, bucketed the same way; `previous.points[i]` is
    /// compared with `points[i]` (same count of points).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Box<Timeseries>>,
}

/// One row of a breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub value: String,
    pub count: u64,
}

/// Answer of `GET /api/stats/breakdown`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Breakdown {
    pub site: String,
    pub from: String,
    pub to: String,
    /// A [`Dimension`] name or `prop.NAME`.
    pub dimension: Field,
    /// Sum over every value, not only the rows returned (percentages are of this).
    pub total: u64,
    /// Distinct values in the range (rows may be cut to `limit`).
    pub distinct: u64,
    /// Largest count first; ties by value.
    pub rows: Vec<Row>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
}

/// One row of `GET /api/stats/sites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteInfo {
    pub site: String,
    pub events: u64,
    /// Newest receive time, RFC 3339 UTC.
    pub last_seen: String,
}

/// Answer of `GET /api/stats/sites`: sites that have data, most recently active first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sites {
    pub sites: Vec<SiteInfo>,
}

/// What a goal counts: custom events by name, or page views by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GoalKind {
    /// Events whose name is `value` (exact).
    Event,
    /// Page views whose path matches `value` (`*` wildcards, as in page filters).
    Page,
}

/// A conversion goal of one site (`GET/POST /api/goals`, `DELETE /api/goals/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Goal {
    /// Chosen by the server (16 hex digits).
    pub id: String,
    pub site: String,
    pub kind: GoalKind,
    /// Event name or path pattern.
    pub value: String,
    /// RFC 3339 UTC.
    pub created_at: String,
}

impl Goal {
    /// Whether an event (its name and path) converts for this goal.
    pub fn matches(&self, name: &str, path: &str) -> bool {
        match self.kind {
            GoalKind::Event => name == self.value,
            GoalKind::Page => name == "page_view" && wildcard_match(&self.value, path),
        }
    }
}

/// Body of `POST /api/goals`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewGoal {
    pub site: String,
    pub kind: GoalKind,
    pub value: String,
}

/// Answer of `GET /api/goals?site=S`, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goals {
    pub goals: Vec<Goal>,
}

/// One goal's figures in `GET /api/stats/goals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoalResult {
    pub goal: Goal,
    /// Distinct visitors with at least one conversion.
    pub visitors: u64,
    /// Converting events (every matching event counts).
    pub conversions: u64,
    /// `visitors` / all visitors of the range (same filters) × 100, one decimal.
    pub conversion_rate: f64,
}

/// Answer of `GET /api/stats/goals`: every goal of the site, in `Goals` order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoalStats {
    pub site: String,
    pub from: String,
    pub to: String,
    /// Distinct visitors of the range with the same filters: the base of the rates.
    pub visitors: u64,
    pub goals: Vec<GoalResult>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
}

/// A read-only share link of one site (`GET/POST /api/shares`, `DELETE /api/shares/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareLink {
    /// Chosen by the server (16 hex digits); deleting it revokes the link.
    pub id: String,
    pub site: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// The bearer credential of the link: `Authorization: Bearer <token>` reads this site's
    /// stats and nothing else.
    pub token: String,
    /// Path and fragment to open: `/dashboard/?site=S#share=<token>` (the token stays in the
    /// fragment, which browsers never send to a server).
    pub url: String,
}

/// Body of `POST /api/shares`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewShareLink {
    pub site: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// Answer of `GET /api/shares?site=S` (every site's links without `site`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareLinks {
    pub links: Vec<ShareLink>,
}

/// Who a credential is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The admin token: everything.
    Admin,
    /// A share link: the stats of one site, read-only.
    Share,
}

/// Answer of `GET /api/access`: what the presented credential may do, so the dashboard shows
/// only what works (a share link hides site switching, goal editing and exports of raw events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub role: Role,
    /// The one site a share link reads; `None` for the admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

/// `format=` of exports: `csv` on panels (breakdown, timeseries, goals), `ndjson` or `json`
/// on `GET /api/export/events`; `json` is every answer's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Json,
    Csv,
    Ndjson,
}

impl ExportFormat {
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Csv => "csv",
            ExportFormat::Ndjson => "ndjson",
        }
    }

    pub fn from_name(name: &str) -> Option<ExportFormat> {
        [ExportFormat::Json, ExportFormat::Csv, ExportFormat::Ndjson]
            .into_iter()
            .find(|f| f.name() == name)
    }
}

/// Rounds to `decimals` places for display-stable JSON (`bounceRate` 1, `viewsPerVisit` 2).
pub fn round_to(value: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (value * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_serde_writes() {
        for d in Dimension::ALL {
            let json = serde_json::to_string(&d).expect("json");
            assert_eq!(json, format!("\"{}\"", d.name()));
            assert_eq!(Dimension::from_name(d.name()), Some(d));
        }
        for i in Interval::ALL {
            let json = serde_json::to_string(&i).expect("json");
            assert_eq!(json, format!("\"{}\"", i.name()));
            assert_eq!(Interval::from_name(i.name()), Some(i));
        }
        assert_eq!(Interval::from_name("week"), None);
    }

    #[test]
    fn time_limits_are_the_rfc3339_years() {
        assert_eq!(
            crate::time::parse_rfc3339("9999-12-31T23:59:59.999Z"),
            Some(LATEST_MS)
        );
        assert_eq!(
            crate::time::parse_rfc3339("1970-01-01T00:00:00Z"),
            Some(EARLIEST_MS)
        );
        // Far from overflowing, whatever a computation on a valid range adds.
        assert!(LATEST_MS.checked_add(MAX_RANGE_MS * 1000).is_some());
    }

    #[test]
    fn default_intervals() {
        assert_eq!(Interval::default_for(HOUR_MS), Interval::Minute);
        assert_eq!(Interval::default_for(2 * HOUR_MS), Interval::Minute);
        assert_eq!(Interval::default_for(2 * HOUR_MS + 1), Interval::Hour);
        assert_eq!(Interval::default_for(3 * DAY_MS), Interval::Hour);
        assert_eq!(Interval::default_for(3 * DAY_MS + 1), Interval::Day);
    }

    #[test]
    fn answers_read_back_as_written() {
        let series = Timeseries {
            site: "s".into(),
            from: "a".into(),
            to: "b".into(),
            interval: Interval::Day,
            tz: "+01:00".into(),
            points: vec![Point {
                time: "2026-11-26T00:00:00.000+01:00".into(),
                ts: 1_764_111_600_000,
                pageviews: 1,
                visitors: 1,
                sessions: 1,
                events: 2,
                ..Point::default()
            }],
            filters: vec![Filter::is_not(Dimension::Country, "DE")],
            previous: None,
        };
        let json = serde_json::to_string(&series).expect("json");
        assert!(json.contains(r#""interval":"day""#), "{json}");
        assert_eq!(
            serde_json::from_str::<Timeseries>(&json).expect("parse"),
            series
        );
        let b = Breakdown {
            site: "s".into(),
            from: "a".into(),
            to: "b".into(),
            dimension: Field::Dim(Dimension::UtmSource),
            total: 9,
            distinct: 1,
            rows: vec![Row {
                value: "hn".into(),
                count: 9,
            }],
            filters: vec![],
        };
        let json = serde_json::to_string(&b).expect("json");
        assert!(json.contains(r#""dimension":"utm_source""#), "{json}");
        assert_eq!(serde_json::from_str::<Breakdown>(&json).expect("parse"), b);
        let sites = Sites {
            sites: vec![SiteInfo {
                site: "a".into(),
                events: 3,
                last_seen: "2026-11-26T10:00:00.000Z".into(),
            }],
        };
        let json = serde_json::to_string(&sites).expect("json");
        assert!(json.contains("lastSeen"), "{json}");
        assert_eq!(serde_json::from_str::<Sites>(&json).expect("parse"), sites);
    }

    #[test]
    fn visit_metrics_and_comparison_use_the_contract_names() {
        let s = Summary {
            site: "s".into(),
            visits: 2,
            bounce_rate: 50.0,
            visit_duration: 15,
            views_per_visit: 1.5,
            filters: vec![Filter::is(Dimension::Page, "/blog/*")],
            previous: Some(Box::new(Summary {
                visits: 1,
                ..Summary::default()
            })),
            ..Summary::default()
        };
        let v = serde_json::to_value(&s).expect("json");
        assert_eq!(v["visits"], 2);
        assert_eq!(v["bounceRate"], 50.0);
        assert_eq!(v["visitDuration"], 15);
        assert_eq!(v["viewsPerVisit"], 1.5);
        assert_eq!(v["filters"][0], "page:/blog/*");
        assert_eq!(v["previous"]["visits"], 1);
        assert_eq!(serde_json::from_value::<Summary>(v).expect("parse"), s);
        // An older server's answer (no visit fields) still reads.
        let old: Summary = serde_json::from_str(
            r#"{"site":"s","from":"a","to":"b","pageviews":1,"visitors":1,"sessions":1,
               "events":1,"eventsByName":{}}"#,
        )
        .expect("old answer");
        assert_eq!((old.visits, old.previous), (0, None));
        assert!(old.props.is_empty());
        let with_props = Summary {
            props: vec!["plan".into(), "seats".into()],
            ..Summary::default()
        };
        let v = serde_json::to_value(&with_props).expect("json");
        assert_eq!(v["props"], serde_json::json!(["plan", "seats"]));
        assert!(serde_json::to_value(Summary::default())
            .expect("json")
            .get("props")
            .is_none());
    }

    #[test]
    fn goals_shares_and_formats() {
        let g = Goal {
            id: "0011223344556677".into(),
            site: "s".into(),
            kind: GoalKind::Page,
            value: "/thanks/*".into(),
            created_at: "2026-11-26T10:00:00.000Z".into(),
        };
        assert!(g.matches("page_view", "/thanks/pro"));
        assert!(!g.matches("click", "/thanks/pro"));
        let e = Goal {
            kind: GoalKind::Event,
            value: "signup".into(),
            ..g.clone()
        };
        assert!(e.matches("signup", "/"));
        assert!(!e.matches("signup2", "/"));
        let json = serde_json::to_string(&g).expect("json");
        assert!(
            json.contains(r#""kind":"page""#) && json.contains("createdAt"),
            "{json}"
        );
        let access = Access {
            role: Role::Share,
            site: Some("s".into()),
        };
        assert_eq!(
            serde_json::to_string(&access).expect("json"),
            r#"{"role":"share","site":"s"}"#
        );
        for f in [ExportFormat::Json, ExportFormat::Csv, ExportFormat::Ndjson] {
            assert_eq!(ExportFormat::from_name(f.name()), Some(f));
        }
        assert_eq!(Compare::from_name("year"), Some(Compare::Year));
        assert_eq!(round_to(33.333_33, 1), 33.3);
        assert_eq!(round_to(1.666_6, 2), 1.67);
    }
}
