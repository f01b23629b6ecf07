//! The site registry: events are accepted only for sites that exist (security review, issue
//! 12: made-up `site` values evicted real sites from the live view and cost state for
//! nothing). Serde types only, shared by the server (the sites API, the `footfall.sites`
//! topic) and the dashboard's sites view.
//!
//! - `GET /api/sites` → [`SiteList`]; `POST /api/sites` with [`AddSite`] → 201 and the
//!   [`RegisteredSite`] (200 when it existed already); `DELETE /api/sites/<site>` → 200, or 404
//!   when it was not registered. All with `Authorization: Bearer <admin token>`; documented in
//!   `docs/API.md`.
//! - The `footfall.sites` topic (distributed mode) is compacted: key = the site, value = a
//!   [`SiteRecord`] while it is registered, a tombstone (no value) once removed. Processors
//!   write it, every collector follows it.
//!
//! Site names are [`crate::validate::site`]'s: a host name (optionally with a port) or a short
//! slug, lower-cased.

use serde::{Deserialize, Serialize};

/// The sites `footfall standalone` knows out of the box: where events without a site (and
/// without an `Origin`) go, and the demo pages.
pub const BUILT_IN_SITES: [&str; 2] = ["default", "demo"];

/// Version of [`SiteRecord`]; a reader skips records of versions it does not know.
pub const SITE_RECORD_VERSION: u32 = 1;

/// One registered site, as the API answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredSite {
    pub site: String,
    /// RFC 3339.
    pub added_at: String,
}

/// Answer of `GET /api/sites`, sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteList {
    pub sites: Vec<RegisteredSite>,
}

/// Body of `POST /api/sites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddSite {
    pub site: String,
}

/// The value of a registered site's record in the `footfall.sites` topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteRecord {
    pub v: u32,
    pub site: String,
    /// Epoch milliseconds.
    pub added_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let list = SiteList {
            sites: vec![RegisteredSite {
                site: "example.com".into(),
                added_at: "2026-11-27T10:00:00.000Z".into(),
            }],
        };
        let json = serde_json::to_string(&list).expect("json");
        assert_eq!(
            json,
            r#"{"sites":[{"site":"example.com","addedAt":"2026-11-27T10:00:00.000Z"}]}"#
        );
        let record = SiteRecord {
            v: SITE_RECORD_VERSION,
            site: "example.com".into(),
            added_at: 5,
        };
        let json = serde_json::to_string(&record).expect("json");
        assert_eq!(json, r#"{"v":1,"site":"example.com","addedAt":5}"#);
        let built_in_are_valid = BUILT_IN_SITES
            .iter()
            .all(|s| crate::validate::site(s).as_deref() == Ok(*s));
        assert!(built_in_are_valid);
    }
}
