//! A valid normalised [`Event`] for tests and benchmarks (feature `test-util`), so the 26
//! fields are spelt out once rather than in every crate's tests.
//!
//! ```
//! # use protocol::fixture::EventBuilder;
//! let e = EventBuilder::new("example.com", "page_view", 1_700_000_000_000)
//!     .visitor("v1")
//!     .path("/pricing")
//!     .build();
//! assert_eq!(e.path, "/pricing");
//! ```
//!
//! Defaults are plain: a desktop Firefox on Linux, path `/`, no referrer, no country, no
//! session, received at `ts`, and an event id unique within the process. Fields without a
//! setter are `pub` on the built [`Event`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::event::{Device, Event, PropValue, Target};

/// See the module docs.
#[derive(Debug, Clone)]
#[must_use]
pub struct EventBuilder(Event);

impl EventBuilder {
    pub fn new(site: &str, name: &str, ts: i64) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        EventBuilder(Event {
            event_id: format!("fixture-{n:012}"),
            site: site.into(),
            name: name.into(),
            ts,
            received_at: ts,
            visitor_id: "v0".into(),
            session_id: None,
            user_id: None,
            host: None,
            path: "/".into(),
            title: None,
            referrer_host: None,
            utm_source: None,
            utm_medium: None,
            utm_campaign: None,
            utm_term: None,
            utm_content: None,
            screen: None,
            lang: None,
            timezone: None,
            country: None,
            region: None,
            city: None,
            device: Device::Desktop,
            browser: "Firefox".into(),
            os: "Linux".into(),
            props: BTreeMap::new(),
            target: None,
        })
    }

    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.0.event_id = id.into();
        self
    }

    pub fn received_at(mut self, ms: i64) -> Self {
        self.0.received_at = ms;
        self
    }

    pub fn visitor(mut self, visitor_id: impl Into<String>) -> Self {
        self.0.visitor_id = visitor_id.into();
        self
    }

    pub fn session(mut self, session_id: impl Into<String>) -> Self {
        self.0.session_id = Some(session_id.into());
        self
    }

    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.0.host = Some(host.into());
        self
    }

    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.0.path = path.into();
        self
    }

    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.0.title = Some(title.into());
        self
    }

    pub fn referrer(mut self, host: impl Into<String>) -> Self {
        self.0.referrer_host = Some(host.into());
        self
    }

    pub fn utm_source(mut self, source: impl Into<String>) -> Self {
        self.0.utm_source = Some(source.into());
        self
    }

    pub fn screen(mut self, screen: impl Into<String>) -> Self {
        self.0.screen = Some(screen.into());
        self
    }

    pub fn lang(mut self, lang: impl Into<String>) -> Self {
        self.0.lang = Some(lang.into());
        self
    }

    /// The time zone and the country derived from it (as the collector would).
    pub fn timezone(mut self, timezone: &str) -> Self {
        self.0.country = crate::geo::country_for_timezone(timezone).map(String::from);
        self.0.timezone = Some(timezone.into());
        self
    }

    pub fn country(mut self, country: impl Into<String>) -> Self {
        self.0.country = Some(country.into());
        self
    }

    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.0.region = Some(region.into());
        self
    }

    pub fn city(mut self, city: impl Into<String>) -> Self {
        self.0.city = Some(city.into());
        self
    }

    pub fn device(mut self, device: Device) -> Self {
        self.0.device = device;
        self
    }

    pub fn browser(mut self, browser: impl Into<String>) -> Self {
        self.0.browser = browser.into();
        self
    }

    pub fn os(mut self, os: impl Into<String>) -> Self {
        self.0.os = os.into();
        self
    }

    pub fn prop(mut self, key: impl Into<String>, value: PropValue) -> Self {
        self.0.props.insert(key.into(), value);
        self
    }

    pub fn target(mut self, target: Target) -> Self {
        self.0.target = Some(target);
        self
    }

    pub fn build(self) -> Event {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_events_encode_and_have_unique_ids() {
        let a = EventBuilder::new("s", "page_view", 5).build();
        let b = EventBuilder::new("s", "page_view", 5).build();
        assert_ne!(a.event_id, b.event_id);
        let e = EventBuilder::new("s", "click", 7)
            .timezone("Asia/Kolkata")
            .session("s1")
            .build();
        assert_eq!(e.country.as_deref(), Some("IN"));
        let bytes = crate::event::encode(&e).expect("encode");
        assert_eq!(crate::event::decode(&bytes), Ok(e));
    }
}
