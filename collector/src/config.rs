//! The collector's settings. `footfall` fills them from CLI flags / `FOOTFALL_*` env vars;
//! tests build them directly. Units are in the field names.

use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

use crate::geoip::GeoIp;
use crate::sites::SitePolicy;

/// Body cap for `/api/track` (one event).
pub const TRACK_BODY_LIMIT_BYTES: usize = 16 * 1024;
/// Body cap for `/api/batch` as sent (possibly gzip).
pub const BATCH_BODY_LIMIT_BYTES: usize = 256 * 1024;
/// Cap on a gzip body once inflated: 100 events of a few KiB each, with room to spare.
pub const DECOMPRESSED_LIMIT_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// Requests per minute per client IP on the ingest endpoints; 0 disables the limit.
    pub rate_limit_per_minute: u32,
    /// Peers whose `X-Forwarded-For` is believed (the CDN, the load balancer).
    pub trusted_proxies: Vec<IpNet>,
    /// Which browser origins may send events.
    pub allowed_origins: AllowedOrigins,
    pub track_body_limit_bytes: usize,
    pub batch_body_limit_bytes: usize,
    pub decompressed_limit_bytes: usize,
    /// Time allowed to receive a request body and get the sink's answer.
    pub request_timeout: Duration,
    /// Which sites events are accepted for (`footfall` sets registered sites only, unless
    /// `--accept-any-site`).
    pub sites: SitePolicy,
    /// Keep the `userId` of events as sent. When false (the default) it is replaced by
    /// `protocol::visitor::user_id_hash` before the sink sees it: sites send e-mail
    /// addresses and account numbers as user ids.
    pub store_user_ids: bool,
    /// Country, region and city by client IP; without it the country comes from the
    /// event's time zone.
    pub geoip: Option<Arc<GeoIp>>,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            rate_limit_per_minute: 200,
            trusted_proxies: Vec::new(),
            allowed_origins: AllowedOrigins::Any,
            track_body_limit_bytes: TRACK_BODY_LIMIT_BYTES,
            batch_body_limit_bytes: BATCH_BODY_LIMIT_BYTES,
            decompressed_limit_bytes: DECOMPRESSED_LIMIT_BYTES,
            request_timeout: Duration::from_secs(10),
            sites: SitePolicy::AcceptAny,
            store_user_ids: false,
            geoip: None,
        }
    }
}

/// The CORS allow-list of the ingest endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// Any origin may send events for any site (the default: a tracker can be embedded
    /// anywhere, and the events only count for the site they name).
    Any,
    /// Only listed origins; each rule optionally bound to one site.
    List(Vec<OriginRule>),
}

/// One allow-list entry: `https://example.com`, `https://*.example.com`, or bound to a site
/// as `example.com=https://www.example.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginRule {
    pub site: Option<String>,
    pub origin: OriginPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    Exact(String),
    /// `scheme://*.suffix`: any subdomain of `suffix` (not `suffix` itself).
    Subdomains {
        scheme: String,
        suffix: String,
    },
}

impl OriginPattern {
    pub fn matches(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        match self {
            OriginPattern::Exact(o) => *o == origin,
            OriginPattern::Subdomains { scheme, suffix } => origin
                .strip_prefix(scheme.as_str())
                .and_then(|rest| rest.strip_prefix("://"))
                .and_then(|host| host.strip_suffix(suffix.as_str()))
                .is_some_and(|sub| !sub.is_empty()),
        }
    }
}

/// Why an allow-list entry could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid allowed origin {entry:?}: {reason}")]
pub struct OriginRuleError {
    pub entry: String,
    pub reason: &'static str,
}

impl std::str::FromStr for OriginRule {
    type Err = OriginRuleError;

    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        let err = |reason| OriginRuleError {
            entry: entry.to_string(),
            reason,
        };
        let (site, origin) = match entry.split_once('=') {
            Some((site, origin)) => (Some(site.trim().to_ascii_lowercase()), origin.trim()),
            None => (None, entry.trim()),
        };
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        let (scheme, host) = origin
            .split_once("://")
            .ok_or_else(|| err("expected scheme://host, e.g. https://example.com"))?;
        if scheme != "http" && scheme != "https" {
            return Err(err("scheme must be http or https"));
        }
        if host.is_empty() || host.contains('/') {
            return Err(err("expected an origin without a path"));
        }
        let origin = match host.strip_prefix("*.") {
            Some(suffix) if !suffix.is_empty() && !suffix.contains('*') => {
                OriginPattern::Subdomains {
                    scheme: scheme.to_string(),
                    suffix: format!(".{suffix}"),
                }
            }
            Some(_) => return Err(err("a wildcard must look like https://*.example.com")),
            None if host.contains('*') => {
                return Err(err("a wildcard must look like https://*.example.com"))
            }
            None => OriginPattern::Exact(origin.clone()),
        };
        Ok(OriginRule { site, origin })
    }
}

/// Parses a comma-separated allow-list; `*` or an empty list means any origin.
pub fn parse_allowed_origins(list: &str) -> Result<AllowedOrigins, OriginRuleError> {
    let entries: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if entries.is_empty() || entries == ["*"] {
        return Ok(AllowedOrigins::Any);
    }
    entries
        .into_iter()
        .map(str::parse)
        .collect::<Result<Vec<_>, _>>()
        .map(AllowedOrigins::List)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rules() {
        assert_eq!(parse_allowed_origins(""), Ok(AllowedOrigins::Any));
        assert_eq!(parse_allowed_origins("*"), Ok(AllowedOrigins::Any));
        let AllowedOrigins::List(rules) =
            parse_allowed_origins("https://Example.com/, example.org=https://*.example.org")
                .expect("parses")
        else {
            panic!("expected a list")
        };
        assert_eq!(
            rules[0],
            OriginRule {
                site: None,
                origin: OriginPattern::Exact("https://example.com".into())
            }
        );
        assert_eq!(rules[1].site.as_deref(), Some("example.org"));
        assert!(rules[1].origin.matches("https://www.example.org"));
        assert!(!rules[1].origin.matches("https://example.org"));
        assert!(!rules[1].origin.matches("https://evilexample.org"));
        assert!(!rules[1].origin.matches("http://www.example.org"));
    }

    #[test]
    fn rejects_bad_rules() {
        assert!(parse_allowed_origins("example.com").is_err());
        assert!(parse_allowed_origins("ftp://example.com").is_err());
        assert!(parse_allowed_origins("https://example.com/path").is_err());
        assert!(parse_allowed_origins("https://ex*ample.com").is_err());
    }
}
