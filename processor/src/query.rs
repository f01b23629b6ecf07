//! The stats API's query parameters and their checks. The answers are the [`protocol::stats`]
//! types, computed by [`crate::history`].

use std::collections::BTreeMap;

use protocol::stats::{
    Compare, Field, Filter, Interval, EARLIEST_MS, LATEST_MS, MAX_FILTERS, MAX_RANGE_MS,
};

/// The default window when `from` is not given.
pub const DEFAULT_RANGE_MS: i64 = 24 * 3600 * 1000;

/// `[from, to)` in epoch milliseconds for one site, with the request's filters and
/// comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeQuery {
    pub site: String,
    pub from: i64,
    pub to: i64,
    /// AND-ed `filter=` parameters.
    pub filters: Vec<Filter>,
    /// `compare=` (summary and timeseries).
    pub compare: Option<Compare>,
}

/// Why a query's parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct QueryError {
    pub field: &'static str,
    pub message: String,
}

/// A time parameter: epoch milliseconds or RFC 3339, from 1970 to the end of year 9999
/// ([`EARLIEST_MS`]..=[`LATEST_MS`]).
pub fn parse_time(field: &'static str, value: &str) -> Result<i64, QueryError> {
    let value = value.trim();
    let ms = match value.parse::<i64>() {
        Ok(ms) => ms,
        Err(_) => protocol::time::parse_rfc3339(value).ok_or_else(|| QueryError {
            field,
            message: "must be epoch milliseconds or an RFC 3339 time".into(),
        })?,
    };
    if !(EARLIEST_MS..=LATEST_MS).contains(&ms) {
        return Err(QueryError {
            field,
            message: "must be between 1970-01-01 and 9999-12-31".into(),
        });
    }
    Ok(ms)
}

impl RangeQuery {
    /// From `site`, `from`, `to` query parameters (`site` defaults to `default`, the range
    /// to the last 24 hours before now). A range is at most [`MAX_RANGE_MS`] long, so the work
    /// of a query is bounded before any store is asked (see [`crate::history`]).
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
            None => now_ms.clamp(EARLIEST_MS, LATEST_MS),
        };
        let from = match params.get("from") {
            Some(v) => parse_time("from", v)?,
            None => to.saturating_sub(DEFAULT_RANGE_MS).max(EARLIEST_MS),
        };
        if from >= to {
            return Err(QueryError {
                field: "from",
                message: "must be before `to`".into(),
            });
        }
        if to - from > MAX_RANGE_MS {
            return Err(QueryError {
                field: "from",
                message: format!(
                    "a range may span at most {} days",
                    MAX_RANGE_MS / protocol::time::DAY_MS
                ),
            });
        }
        let compare = match params.get("compare").map(|s| s.trim()) {
            None | Some("") => None,
            Some(name) => Some(Compare::from_name(name).ok_or_else(|| QueryError {
                field: "compare",
                message: "must be previous or year".into(),
            })?),
        };
        Ok(RangeQuery {
            site,
            from,
            to,
            filters: Vec::new(),
            compare,
        })
    }

    /// Adds the `filter=` parameters of a raw query string (repeatable, so they are not in
    /// the single-valued map the other parameters come from).
    pub fn with_filters(mut self, raw_query: Option<&str>) -> Result<Self, QueryError> {
        self.filters = parse_filters(raw_query)?;
        Ok(self)
    }

    /// The range this one is compared with.
    pub fn compared(&self) -> Option<RangeQuery> {
        let (from, to) = compare_range(self.compare?, self.from, self.to);
        Some(RangeQuery {
            from,
            to,
            compare: None,
            ..self.clone()
        })
    }
}

/// Every `filter=` of a raw query string, in order, duplicates dropped.
pub fn parse_filters(raw_query: Option<&str>) -> Result<Vec<Filter>, QueryError> {
    let mut out: Vec<Filter> = Vec::new();
    for (key, value) in url::form_urlencoded::parse(raw_query.unwrap_or("").as_bytes()) {
        if key != "filter" {
            continue;
        }
        let f = Filter::parse(&value).map_err(|e| QueryError {
            field: "filter",
            message: e.0,
        })?;
        if !out.contains(&f) {
            out.push(f);
        }
        if out.len() > MAX_FILTERS {
            return Err(QueryError {
                field: "filter",
                message: format!("at most {MAX_FILTERS} filters"),
            });
        }
    }
    Ok(out)
}

/// `[from, to)` of the comparison range: the same length just before, or the same dates a
/// year earlier (29 February becomes 28 February), same length.
pub fn compare_range(compare: Compare, from: i64, to: i64) -> (i64, i64) {
    let len = to - from;
    match compare {
        Compare::Previous => (from - len, from),
        Compare::Year => {
            let day = from.div_euclid(protocol::time::DAY_MS);
            let time_of_day = from.rem_euclid(protocol::time::DAY_MS);
            let (y, m, d) = protocol::time::civil_from_days(day);
            let d = if m == 2 && d == 29 { 28 } else { d };
            let start =
                protocol::time::days_from_civil(y - 1, m, d) * protocol::time::DAY_MS + time_of_day;
            (start, start + len)
        }
    }
}

/// Most points one time series may have; a finer interval over a longer range is refused.
pub const MAX_POINTS: i64 = 2000;
/// Default and largest `limit` of a breakdown.
pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 1000;

/// A fixed UTC offset for day (and hour) buckets, in minutes east of UTC: `Z`, `UTC`,
/// `+05:30`, `-0800`, `+02`. IANA zone names are refused rather than guessed: the caller knows
/// its offset.
pub fn parse_tz(value: &str) -> Result<i32, QueryError> {
    protocol::time::parse_utc_offset(value).ok_or_else(|| QueryError {
        field: "tz",
        message: "must be a UTC offset such as +05:30, -08:00 or Z".into(),
    })
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
            Some(name) => Interval::from_name(name).ok_or_else(|| QueryError {
                field: "interval",
                message: "must be minute, hour or day".into(),
            })?,
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
        // Saturating and checked: a range from `from_params` is far from i64's limits, but
        // this must not overflow for any value whatever its caller checked.
        let mut start = from.saturating_add(off).div_euclid(step) * step - off;
        let mut out = Vec::new();
        while start < to && (out.len() as i64) <= MAX_POINTS {
            let Some(end) = start.checked_add(step) else {
                out.push((start, start.max(from), to));
                break;
            };
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
    /// A dimension or `prop.NAME`.
    pub dimension: Field,
    pub limit: usize,
}

impl BreakdownQuery {
    pub fn from_params(params: &BTreeMap<String, String>, now_ms: i64) -> Result<Self, QueryError> {
        let range = RangeQuery::from_params(params, now_ms)?;
        let dimension = params
            .get("dimension")
            .and_then(|d| Field::parse(d.trim()))
            .ok_or_else(|| QueryError {
                field: "dimension",
                message: format!(
                    "must be prop.NAME or one of {}",
                    protocol::stats::Dimension::ALL
                        .map(protocol::stats::Dimension::name)
                        .join(", ")
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
                to: 1_701_302_400_000,
                ..Default::default()
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
        // The review's attacks: huge spans, times past the year 9999, before 1970.
        assert_eq!(err(&[("from", "0"), ("to", "86400000000000000")]), "to");
        assert_eq!(
            err(&[
                ("from", "-9000000000000000000"),
                ("to", "9000000000000000000")
            ]),
            "to"
        );
        assert_eq!(
            err(&[
                ("from", "9223372036854775806"),
                ("to", "9223372036854775807")
            ]),
            "to"
        );
        assert_eq!(err(&[("from", "-1"), ("to", "1000")]), "from");
        let at_max = params(&[("from", "0"), ("to", &MAX_RANGE_MS.to_string())]);
        assert!(RangeQuery::from_params(&at_max, 0).is_ok());
        assert_eq!(
            err(&[("from", "0"), ("to", &(MAX_RANGE_MS + 1).to_string())]),
            "from"
        );
        assert_eq!(err(&[("to", &(LATEST_MS + 1).to_string())]), "to");
        // Without `from`, a `to` early in 1970 gives a range clipped at the epoch.
        let q = RangeQuery::from_params(&params(&[("to", "1000")]), 0).expect("ok");
        assert_eq!((q.from, q.to), (0, 1000));
    }
    #[test]
    fn filters_and_comparison() {
        let raw = "site=s&filter=page%3A%2Fblog%2F*&filter=country!%3ADE&filter=page%3A%2Fblog%2F*";
        let f = parse_filters(Some(raw)).expect("ok");
        assert_eq!(f.len(), 2);
        assert_eq!(f[1].to_param(), "country!:DE");
        assert_eq!(
            parse_filters(Some("filter=nope%3A1"))
                .expect_err("bad")
                .field,
            "filter"
        );
        let day = protocol::time::DAY_MS;
        assert_eq!(
            compare_range(Compare::Previous, 10 * day, 17 * day),
            (3 * day, 10 * day)
        );
        // 2024-03-01 → 2023-03-01; 2024-02-29 → 2023-02-28.
        let mar1 = protocol::time::days_from_civil(2024, 3, 1) * day;
        let (a, b) = compare_range(Compare::Year, mar1, mar1 + day);
        assert_eq!(a, protocol::time::days_from_civil(2023, 3, 1) * day);
        assert_eq!(b - a, day);
        let feb29 = protocol::time::days_from_civil(2024, 2, 29) * day + 3_600_000;
        let (a, _) = compare_range(Compare::Year, feb29, feb29 + day);
        assert_eq!(
            a,
            protocol::time::days_from_civil(2023, 2, 28) * day + 3_600_000
        );
        let p = params(&[("compare", "week")]);
        assert_eq!(
            RangeQuery::from_params(&p, 10_000_000)
                .expect_err("bad")
                .field,
            "compare"
        );
    }

    #[test]
    fn tz_offsets() {
        assert_eq!(parse_tz("+05:30"), Ok(330));
        assert_eq!(parse_tz("-0800"), Ok(-480));
        assert_eq!(parse_tz("+02"), Ok(120));
        assert_eq!(parse_tz("Z"), Ok(0));
        assert!(parse_tz("Asia/Kolkata").is_err());
        assert!(parse_tz("+25:00").is_err());
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
        assert_eq!(
            protocol::time::format_rfc3339_local(b[0].0, 330),
            "2023-11-29T00:00:00.000+05:30"
        );
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
            (
                Field::Dim(protocol::stats::Dimension::UtmSource),
                DEFAULT_LIMIT
            )
        );
        assert!(BreakdownQuery::from_params(&params(&[("dimension", "nope")]), 0).is_err());
        assert!(BreakdownQuery::from_params(
            &params(&[("dimension", "page"), ("limit", "0")]),
            100_000_000
        )
        .is_err());
    }
}
