//! Query ranges and answers of the stats API, shared by every store so both deployments
//! return the same JSON.

use std::collections::BTreeMap;

use serde::Serialize;

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
}
