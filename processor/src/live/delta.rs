//! Mergeable metric deltas: what a processor has seen since its last emission, per site and
//! per minute. Deltas merge by adding counts and uniting visitor sketches, so any number of
//! processors can emit them and any gateway can merge the whole stream in any order.

use std::collections::{BTreeMap, HashMap};

use protocol::live::FeedEvent;
use protocol::Event;
use serde::{Deserialize, Serialize};

use super::sketch::VisitorSketch;

/// Version of the serialised delta (the `footfall.metrics` topic's payload).
pub const DELTA_VERSION: u32 = 1;

/// Distinct keys one bucket keeps per dimension; the rest are counted under [`OTHER`]. Keeps
/// memory bounded whatever the traffic (a bot crawling a million URLs, say).
pub const MAX_KEYS_PER_DIMENSION: usize = 1000;
/// Where keys beyond the cap are counted.
pub const OTHER: &str = "(other)";

const MINUTE_MS: i64 = 60_000;

/// Counts per key of one dimension.
pub type Counts = BTreeMap<String, u64>;

/// Everything counted about one site in one minute (or, in the engine, one day).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    pub pageviews: u64,
    pub events: u64,
    pub visitors: VisitorSketch,
    pub pages: Counts,
    pub entry_pages: Counts,
    pub referrers: Counts,
    pub utm_sources: Counts,
    pub devices: Counts,
    pub browsers: Counts,
    pub os: Counts,
    pub countries: Counts,
    pub custom_events: Counts,
}

fn bump(counts: &mut Counts, key: &str, by: u64) {
    if let Some(n) = counts.get_mut(key) {
        *n += by;
    } else if counts.len() < MAX_KEYS_PER_DIMENSION {
        counts.insert(key.to_string(), by);
    } else {
        *counts.entry(OTHER.to_string()).or_insert(0) += by;
    }
}

fn merge_counts(into: &mut Counts, from: &Counts) {
    for (k, n) in from {
        bump(into, k, *n);
    }
}

/// The built-in event names; everything else is a custom event.
fn is_builtin(name: &str) -> bool {
    matches!(
        name,
        "page_view" | "click" | "session_start" | "session_end" | "outbound"
    )
}

impl Bucket {
    pub fn add(&mut self, e: &Event) {
        self.events += 1;
        self.visitors.insert(&e.visitor_id);
        match e.name.as_str() {
            "page_view" => {
                self.pageviews += 1;
                bump(&mut self.pages, &e.path, 1);
                bump(&mut self.devices, e.device.as_str(), 1);
                bump(&mut self.browsers, &e.browser, 1);
                bump(&mut self.os, &e.os, 1);
                if let Some(c) = &e.country {
                    bump(&mut self.countries, c, 1);
                }
                if let Some(r) = &e.referrer_host {
                    bump(&mut self.referrers, r, 1);
                }
                if let Some(u) = &e.utm_source {
                    bump(&mut self.utm_sources, u, 1);
                }
            }
            // The tracker sends session_start with the page the visit began on.
            "session_start" => bump(&mut self.entry_pages, &e.path, 1),
            name if !is_builtin(name) => bump(&mut self.custom_events, name, 1),
            _ => {}
        }
    }

    pub fn merge(&mut self, other: &Bucket) {
        self.pageviews += other.pageviews;
        self.events += other.events;
        self.visitors.merge(&other.visitors);
        merge_counts(&mut self.pages, &other.pages);
        merge_counts(&mut self.entry_pages, &other.entry_pages);
        merge_counts(&mut self.referrers, &other.referrers);
        merge_counts(&mut self.utm_sources, &other.utm_sources);
        merge_counts(&mut self.devices, &other.devices);
        merge_counts(&mut self.browsers, &other.browsers);
        merge_counts(&mut self.os, &other.os);
        merge_counts(&mut self.countries, &other.countries);
        merge_counts(&mut self.custom_events, &other.custom_events);
    }
}

/// What one emitter saw of one site since its last emission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsDelta {
    pub v: u32,
    pub site: String,
    /// Minute start (ms since the epoch) → what happened in that minute.
    pub minutes: BTreeMap<i64, Bucket>,
    /// The newest events for the live feed (without `seq`; the engine numbers them).
    pub feed: Vec<FeedEvent>,
}

impl MetricsDelta {
    pub fn new(site: impl Into<String>) -> Self {
        MetricsDelta {
            v: DELTA_VERSION,
            site: site.into(),
            minutes: BTreeMap::new(),
            feed: Vec::new(),
        }
    }

    pub fn add(&mut self, e: &Event) {
        let minute = e.ts.div_euclid(MINUTE_MS) * MINUTE_MS;
        self.minutes.entry(minute).or_default().add(e);
        self.feed.push(feed_event(e));
        // Only the newest events can ever be shown.
        let len = self.feed.len();
        if len > protocol::live::FEED_LEN {
            self.feed.drain(..len - protocol::live::FEED_LEN);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.minutes.is_empty()
    }
}

fn feed_event(e: &Event) -> FeedEvent {
    FeedEvent {
        seq: 0,
        ts: e.ts,
        event: e.name.clone(),
        path: e.path.clone(),
        device: e.device.as_str().to_string(),
        browser: e.browser.clone(),
        country: e.country.clone(),
        referrer: e.referrer_host.clone(),
    }
}

/// Accumulates events into one delta per site until [`DeltaBuilder::take`].
#[derive(Debug, Default)]
pub struct DeltaBuilder {
    sites: HashMap<String, MetricsDelta>,
}

impl DeltaBuilder {
    pub fn add(&mut self, e: &Event) {
        match self.sites.get_mut(&e.site) {
            Some(d) => d.add(e),
            None => {
                let mut d = MetricsDelta::new(e.site.clone());
                d.add(e);
                self.sites.insert(e.site.clone(), d);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sites.is_empty()
    }

    /// Everything accumulated, one delta per site; the builder starts empty again.
    pub fn take(&mut self) -> Vec<MetricsDelta> {
        self.sites.drain().map(|(_, d)| d).collect()
    }
}

/// Deltas from one batch of events, for callers that apply them right away.
pub fn deltas_of<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<MetricsDelta> {
    let mut b = DeltaBuilder::default();
    for e in events {
        b.add(e);
    }
    b.take()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_dimensions_overflow_into_other() {
        let mut counts = Counts::new();
        for i in 0..MAX_KEYS_PER_DIMENSION + 10 {
            bump(&mut counts, &format!("/p{i}"), 1);
        }
        assert_eq!(counts.len(), MAX_KEYS_PER_DIMENSION + 1);
        assert_eq!(counts.get(OTHER), Some(&10));
        bump(&mut counts, "/p0", 1);
        assert_eq!(counts.get("/p0"), Some(&2), "existing keys still count");
    }

    #[test]
    fn delta_serde_roundtrip() {
        let e = crate::live::test_event("example.com", "page_view", "/", "v1", 1_800_000_000_123);
        let mut d = MetricsDelta::new("example.com");
        d.add(&e);
        let json = serde_json::to_string(&d).expect("json");
        let back: MetricsDelta = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, d);
        let minute = 1_800_000_000_123 / 60_000 * 60_000;
        assert_eq!(back.minutes.keys().copied().collect::<Vec<_>>(), [minute]);
    }
}
