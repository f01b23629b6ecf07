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

/// What a breakdown can be grouped by (`?dimension=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Every event, by name (custom events included).
    Event,
    /// Page views by path.
    Page,
    /// Entry pages: the path of each `session_start`.
    Entry,
    /// Page views by referrer host; [`DIRECT`] when there is none.
    Referrer,
    /// Page views by `utm_source` (events without one are not counted here).
    UtmSource,
    Device,
    Browser,
    Os,
    /// Page views by country (derived from the time zone); [`UNKNOWN`] when there is none.
    Country,
}

/// Label of page views without an external referrer.
pub const DIRECT: &str = "(direct)";
/// Label of page views whose country is unknown.
pub const UNKNOWN: &str = "(unknown)";

impl Dimension {
    pub const ALL: [Dimension; 9] = [
        Dimension::Event,
        Dimension::Page,
        Dimension::Entry,
        Dimension::Referrer,
        Dimension::UtmSource,
        Dimension::Device,
        Dimension::Browser,
        Dimension::Os,
        Dimension::Country,
    ];

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
        }
    }

    pub fn from_name(name: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// Answer of `GET /api/stats/summary`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// One point of a time series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// Answer of `GET /api/stats/timeseries`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    pub dimension: Dimension,
    /// Sum over every value, not only the rows returned (percentages are of this).
    pub total: u64,
    /// Distinct values in the range (rows may be cut to `limit`).
    pub distinct: u64,
    /// Largest count first; ties by value.
    pub rows: Vec<Row>,
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
            }],
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
            dimension: Dimension::UtmSource,
            total: 9,
            distinct: 1,
            rows: vec![Row {
                value: "hn".into(),
                count: 9,
            }],
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
}
