//! What a site configures: from `data-*` attributes of the script tag or the options of
//! `init()`. The JS shell reads those and passes plain numbers and strings, so the wasm
//! never walks a JS object (that would pull `Reflect` glue into every visitor's download).

use alloc::string::String;

/// Bit flags passed from JS in one `u32`. The JS side (`npm/src/core.js`) mirrors them.
pub mod flags {
    /// Send nothing when the browser says Do-Not-Track or Global Privacy Control.
    pub const RESPECT_DNT: u32 = 1;
    /// Send nothing from localhost, 127.0.0.0/8, [::1] or file: pages.
    pub const IGNORE_LOCALHOST: u32 = 2;
    /// Record a `page_view` on load and on single-page-app navigation.
    pub const AUTO_PAGEVIEWS: u32 = 4;
    /// Record clicks on links and buttons, and outbound links.
    pub const AUTO_CLICKS: u32 = 8;
    /// Record nothing until `consent(true)`.
    pub const REQUIRE_CONSENT: u32 = 16;
    /// What the script tag does without extra attributes.
    pub const DEFAULT: u32 = AUTO_PAGEVIEWS | AUTO_CLICKS;
}

/// Events in the queue that trigger a send right away.
pub const DEFAULT_BATCH_SIZE: usize = 20;
/// The longest an event waits in memory before it is sent.
pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 5_000;
/// Events kept while the collector is unreachable; older ones are dropped first.
pub const DEFAULT_MAX_QUEUE: usize = 500;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The site id every event belongs to (`data-site`).
    pub site: String,
    /// Full URL or absolute path of the collector's batch endpoint.
    pub endpoint: String,
    pub batch_size: usize,
    pub flush_interval_ms: u64,
    pub max_queue: usize,
    pub respect_dnt: bool,
    pub ignore_localhost: bool,
    pub auto_pageviews: bool,
    pub auto_clicks: bool,
    pub require_consent: bool,
}

impl Config {
    /// `api` is the collector's base URL (`https://stats.example.com`, `/` for the same
    /// origin, or empty for the same origin).
    pub fn new(site: &str, api: &str) -> Self {
        Config::from_flags(site, api, flags::DEFAULT, 0, 0, 0)
    }

    /// Zero for a number means "the default", so JS can pass `opts.x | 0` unconditionally.
    pub fn from_flags(
        site: &str,
        api: &str,
        bits: u32,
        batch_size: u32,
        flush_interval_ms: u32,
        max_queue: u32,
    ) -> Self {
        let or = |v: u32, d: usize| if v == 0 { d } else { v as usize };
        Config {
            site: String::from(site.trim_ascii()),
            endpoint: endpoint(api),
            // The collector takes at most 100 events per request.
            batch_size: or(batch_size, DEFAULT_BATCH_SIZE).min(crate::queue::MAX_BATCH_EVENTS),
            flush_interval_ms: if flush_interval_ms == 0 {
                DEFAULT_FLUSH_INTERVAL_MS
            } else {
                u64::from(flush_interval_ms)
            },
            max_queue: or(max_queue, DEFAULT_MAX_QUEUE),
            respect_dnt: bits & flags::RESPECT_DNT != 0,
            ignore_localhost: bits & flags::IGNORE_LOCALHOST != 0,
            auto_pageviews: bits & flags::AUTO_PAGEVIEWS != 0,
            auto_clicks: bits & flags::AUTO_CLICKS != 0,
            require_consent: bits & flags::REQUIRE_CONSENT != 0,
        }
    }
}

/// `https://x.org/` → `https://x.org/api/batch`; `/` or `` → `/api/batch`;
/// `https://x.org/stats` → `https://x.org/stats/api/batch` (collector behind a path prefix).
fn endpoint(api: &str) -> String {
    let mut url = String::from(crate::text::trim_end(api.trim_ascii(), b'/'));
    url.push_str("/api/batch");
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_from_api_base() {
        assert_eq!(Config::new("s", "").endpoint, "/api/batch");
        assert_eq!(Config::new("s", "/").endpoint, "/api/batch");
        assert_eq!(
            Config::new("s", "https://stats.example.com/").endpoint,
            "https://stats.example.com/api/batch"
        );
        assert_eq!(
            Config::new("s", " https://cdn.example.com/ff ").endpoint,
            "https://cdn.example.com/ff/api/batch"
        );
    }

    #[test]
    fn zero_means_default_and_batch_is_capped() {
        let c = Config::new("s", "/");
        assert_eq!(c.batch_size, DEFAULT_BATCH_SIZE);
        assert_eq!(c.flush_interval_ms, DEFAULT_FLUSH_INTERVAL_MS);
        assert_eq!(c.max_queue, DEFAULT_MAX_QUEUE);
        assert!(c.auto_pageviews && c.auto_clicks);
        assert!(!c.respect_dnt && !c.ignore_localhost && !c.require_consent);
        let c = Config::from_flags("s", "/", flags::RESPECT_DNT, 1000, 250, 3);
        assert_eq!(c.batch_size, 100);
        assert_eq!(c.flush_interval_ms, 250);
        assert_eq!(c.max_queue, 3);
        assert!(c.respect_dnt && !c.auto_pageviews);
    }
}
