//! Query ranges and answers of the stats API, shared by every store so both deployments
//! return the same JSON.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::rollup::Dimension;

/// The default window when `from` is not given.
pub const DEFAULT_RANGE_MS: i64 = 24 * 3600 * 1000;

/// `[from, to)` in epoch milliseconds for one site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeQuery {
    pub site: String,
    pub from: i64,
    pub to: i64,
}

/// Why a query's parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct QueryError {
    pub field: &'static str,
    pub message: String,
}

/// A time parameter: epoch milliseconds or RFC 3339.
pub fn parse_time(field: &'static str, value: &str) -> Result<i64, QueryError> {
    let value = value.trim();
    if let Ok(ms) = value.parse::<i64>() {
        return Ok(ms);
    }
    protocol::time::parse_rfc3339(value).ok_or_else(|| QueryError {
        field,
        message: "must be epoch milliseconds or an RFC 3339 time".into(),
    })
}

impl RangeQuery {
    /// From `site`, `from`, `to` query parameters (`site` defaults to `default`, the range
    /// to the last 24 hours before now).
    pub fn from_params(params: &BTreeMap<String, String>, now_ms: i64) -> Result<Self, QueryError> {
        let site = params
            .get("site")
            .map(|s| s.trim().to_ascii_lowercase())
            .unwrap_or_else(|| "default".into());
        protocol::validate::site(&site).map_err(|e| QueryError {
            field: "site",
            message: e.message,
        })?;
        let to = match params.get("to") {
            Some(v) => parse_time("to", v)?,
            None => now_ms,
        };
        let from = match params.get("from") {
            Some(v) => parse_time("from", v)?,
            None => to.saturating_sub(DEFAULT_RANGE_MS),
        };
        if from >= to {
            return Err(QueryError {
                field: "from",
                message: "must be before `to`".into(),
            });
        }
        Ok(RangeQuery { site, from, to })
    }
}

/// Most points one time series may have; a finer interval over a longer range is refused.
pub const MAX_POINTS: i64 = 2000;
/// Default and largest `limit` of a breakdown.
pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 1000;

/// Bucket size of a time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Minute,
    Hour,
    Day,
}

impl Interval {
    pub fn ms(self) -> i64 {
        match self {
            Interval::Minute => crate::rollup::MINUTE_MS,
            Interval::Hour => crate::rollup::HOUR_MS,
            Interval::Day => crate::rollup::DAY_MS,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Interval::Minute => "minute",
            Interval::Hour => "hour",
            Interval::Day => "day",
        }
    }

    /// Minutes up to 2 hours, hours up to 3 days, days beyond.
    pub fn default_for(range_ms: i64) -> Interval {
        if range_ms <= 2 * crate::rollup::HOUR_MS {
            Interval::Minute
        } else if range_ms <= 3 * crate::rollup::DAY_MS {
            Interval::Hour
        } else {
            Interval::Day
        }
    }
}

/// A fixed UTC offset for day (and hour) buckets: `Z`, `UTC`, `+05:30`, `-0800`, `+02`.
/// IANA zone names are refused rather than guessed: the caller knows its offset.
pub fn parse_tz(value: &str) -> Result<i32, QueryError> {
    let bad = || QueryError {
        field: "tz",
        message: "must be a UTC offset such as +05:30, -08:00 or Z".into(),
    };
    let v = value.trim();
    if v.eq_ignore_ascii_case("z") || v.eq_ignore_ascii_case("utc") || v.is_empty() {
        return Ok(0);
    }
    let (sign, rest) = match v.as_bytes().first() {
        Some(b'+') => (1, &v[1..]),
        Some(b'-') => (-1, &v[1..]),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || !(digits.len() == 2 || digits.len() == 4) {
        return Err(bad());
    }
    let hours: i32 = digits[..2].parse().map_err(|_| bad())?;
    let minutes: i32 = if digits.len() == 4 {
        digits[2..].parse().map_err(|_| bad())?
    } else {
        0
    };
    if hours > 14 || minutes > 59 {
        return Err(bad());
    }
    Ok(sign * (hours * 60 + minutes))
}

/// `+05:30` / `Z` for an offset in minutes.
pub fn format_tz(offset_min: i32) -> String {
    if offset_min == 0 {
        return "Z".into();
    }
    let sign = if offset_min < 0 { '-' } else { '+' };
    let a = offset_min.abs();
    format!("{sign}{:02}:{:02}", a / 60, a % 60)
}

/// Local RFC 3339 time of `ms` at a fixed offset, e.g. `2026-11-26T00:00:00.000+05:30`.
pub fn format_local(ms: i64, offset_min: i32) -> String {
    let local = protocol::time::format_rfc3339_millis(ms + i64::from(offset_min) * 60_000);
    let stem = local.strip_suffix('Z').unwrap_or(&local);
    format!("{stem}{}", format_tz(offset_min))
}

/// `GET /api/stats/timeseries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeseriesQuery {
    pub range: RangeQuery,
    pub interval: Interval,
    /// Minutes east of UTC; buckets start at local midnight / local hour.
    pub tz_offset_min: i32,
}

impl TimeseriesQuery {
    pub fn from_params(params: &BTreeMap<String, String>, now_ms: i64) -> Result<Self, QueryError> {
        let range = RangeQuery::from_params(params, now_ms)?;
        let interval = match params.get("interval").map(|s| s.trim()) {
            None | Some("") => Interval::default_for(range.to - range.from),
            Some("minute") => Interval::Minute,
            Some("hour") => Interval::Hour,
            Some("day") => Interval::Day,
            Some(_) => {
                return Err(QueryError {
                    field: "interval",
                    message: "must be minute, hour or day".into(),
                })
            }
        };
        let tz_offset_min = match params.get("tz") {
            Some(v) => parse_tz(v)?,
            None => 0,
        };
        let q = TimeseriesQuery {
            range,
            interval,
            tz_offset_min,
        };
        if q.buckets().len() as i64 > MAX_POINTS {
            return Err(QueryError {
                field: "interval",
                message: format!("more than {MAX_POINTS} points; choose a coarser interval"),
            });
        }
        Ok(q)
    }

    /// `(label start, [from, to))` of every point: buckets aligned to the local interval and
    /// clipped to the range.
    pub fn buckets(&self) -> Vec<(i64, i64, i64)> {
        let step = self.interval.ms();
        let off = i64::from(self.tz_offset_min) * 60_000;
        let (from, to) = (self.range.from, self.range.to);
        let mut start = (from + off).div_euclid(step) * step - off;
        let mut out = Vec::new();
        while start < to && (out.len() as i64) <= MAX_POINTS {
            let end = start + step;
            out.push((start, start.max(from), end.min(to)));
            start = end;
        }
        out
    }
}

/// `GET /api/stats/breakdown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakdownQuery {
    pub range: RangeQuery,
    pub dimension: Dimension,
    pub limit: usize,
}

impl BreakdownQuery {
    pub fn from_params(params: &BTreeMap<String, String>, now_ms: i64) -> Result<Self, QueryError> {
        let range = RangeQuery::from_params(params, now_ms)?;
        let dimension = params
            .get("dimension")
            .and_then(|d| Dimension::from_name(d.trim()))
            .ok_or_else(|| QueryError {
                field: "dimension",
                message: format!(
                    "must be one of {}",
                    Dimension::ALL.map(Dimension::name).join(", ")
                ),
            })?;
        let limit = match params.get("limit") {
            None => DEFAULT_LIMIT,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(QueryError {
                        field: "limit",
                        message: format!("must be a number from 1 to {MAX_LIMIT}"),
                    })
                }
            },
        };
        Ok(BreakdownQuery {
            range,
            dimension,
            limit,
        })
    }
}

/// One point of a time series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// Bucket start, local time at the query's offset.
    pub time: String,
    /// Bucket start, epoch milliseconds.
    pub ts: i64,
    pub pageviews: u64,
    pub visitors: u64,
    pub sessions: u64,
    pub events: u64,
}

/// Answer of `GET /api/stats/timeseries`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeseries {
    pub site: String,
    pub from: String,
    pub to: String,
    pub interval: &'static str,
    pub tz: String,
    pub points: Vec<Point>,
}

/// One row of a breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub value: String,
    pub count: u64,
}

/// Answer of `GET /api/stats/breakdown`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Breakdown {
    pub site: String,
    pub from: String,
    pub to: String,
    pub dimension: &'static str,
    /// Sum over every value, not only the rows returned.
    pub total: u64,
    /// Distinct values in the range (rows may be cut to `limit`).
    pub distinct: u64,
    /// Largest count first; ties by value.
    pub rows: Vec<Row>,
}

/// `GET /api/stats/summary`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub site: String,
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

/// One row of `GET /api/stats/sites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteInfo {
    pub site: String,
    pub events: u64,
    pub last_seen: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_to_last_day() {
        let q = RangeQuery::from_params(&params(&[]), 1_000_000_000_000).expect("ok");
        assert_eq!(q.site, "default");
        assert_eq!(q.to - q.from, DEFAULT_RANGE_MS);
    }

    #[test]
    fn epoch_and_rfc3339() {
        let q = RangeQuery::from_params(
            &params(&[
                ("site", "Example.com"),
                ("from", "2023-11-29T00:00:00Z"),
                ("to", "1701302400000"),
            ]),
            0,
        )
        .expect("ok");
        assert_eq!(
            q,
            RangeQuery {
                site: "example.com".into(),
                from: 1_701_216_000_000,
                to: 1_701_302_400_000
            }
        );
    }

    #[test]
    fn bad_params() {
        let err = |p: &[(&str, &str)]| {
            RangeQuery::from_params(&params(p), 10_000)
                .expect_err("bad")
                .field
        };
        assert_eq!(err(&[("from", "yesterday")]), "from");
        assert_eq!(err(&[("from", "5000"), ("to", "5000")]), "from");
        assert_eq!(err(&[("site", "a b")]), "site");
    }
    #[test]
    fn tz_offsets() {
        assert_eq!(parse_tz("+05:30"), Ok(330));
        assert_eq!(parse_tz("-0800"), Ok(-480));
        assert_eq!(parse_tz("+02"), Ok(120));
        assert_eq!(parse_tz("Z"), Ok(0));
        assert!(parse_tz("Asia/Kolkata").is_err());
        assert!(parse_tz("+25:00").is_err());
        assert_eq!(format_tz(-210), "-03:30");
        assert_eq!(format_local(0, 330), "1970-01-01T05:30:00.000+05:30");
    }

    #[test]
    fn timeseries_buckets_align_to_local_days() {
        let p = params(&[
            ("from", "2023-11-29T10:00:00Z"),
            ("to", "2023-12-01T00:00:00Z"),
            ("tz", "+05:30"),
        ]);
        let q = TimeseriesQuery::from_params(&p, 0).expect("ok");
        assert_eq!(q.interval, Interval::Hour);
        let p = params(&[
            ("from", "2023-11-29T10:00:00Z"),
            ("to", "2023-12-01T00:00:00Z"),
            ("tz", "+05:30"),
            ("interval", "day"),
        ]);
        let q = TimeseriesQuery::from_params(&p, 0).expect("ok");
        let b = q.buckets();
        assert_eq!(b.len(), 3);
        assert_eq!(format_local(b[0].0, 330), "2023-11-29T00:00:00.000+05:30");
        assert_eq!(b[0].1, q.range.from);
        assert_eq!(b[2].2, q.range.to);
        let too_many = params(&[("from", "0"), ("to", "9000000000"), ("interval", "minute")]);
        assert_eq!(
            TimeseriesQuery::from_params(&too_many, 0)
                .expect_err("bad")
                .field,
            "interval"
        );
    }

    #[test]
    fn breakdown_params() {
        let q = BreakdownQuery::from_params(&params(&[("dimension", "utm_source")]), 100_000_000)
            .expect("ok");
        assert_eq!(
            (q.dimension, q.limit),
            (Dimension::UtmSource, DEFAULT_LIMIT)
        );
        assert!(BreakdownQuery::from_params(&params(&[("dimension", "nope")]), 0).is_err());
        assert!(BreakdownQuery::from_params(
            &params(&[("dimension", "page"), ("limit", "0")]),
            100_000_000
        )
        .is_err());
    }
}
