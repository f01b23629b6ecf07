//! Mergeable metric deltas: what a processor has seen since its last emission, per site and
//! per minute. Deltas merge by adding counts and uniting visitor sketches, so any number of
//! processors can emit them and any gateway can merge the whole stream in any order.

use std::collections::{BTreeMap, HashMap};

use protocol::live::FeedEvent;
use protocol::Event;
use serde::{Deserialize, Serialize};

use protocol::stats::Dimension;

use crate::rollup::{self, DimensionCode, Hll};

/// Version of the serialised delta (the `footfall.metrics` topic's payload). 2: visitors are
/// [`Hll`] registers, the same sketch the stored rollups keep.
pub const DELTA_VERSION: u32 = 2;

/// Distinct keys one bucket keeps per dimension; the rest are counted under [`OTHER`]. Keeps
/// memory bounded whatever the traffic (a bot crawling a million URLs, say).
pub const MAX_KEYS_PER_DIMENSION: usize = 1000;
/// Where keys beyond the cap are counted.
pub const OTHER: &str = "(other)";

const MINUTE_MS: i64 = 60_000;

/// Counts per key of one dimension.
pub type Counts = BTreeMap<String, u64>;

/// Everything counted about one site in one minute (or, in the engine, one day). What an
/// event adds to is [`rollup::contributions`]: the one definition the stored rollups use
/// too, so the live view and history always agree on what a page view, a referrer or an
/// entry page is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// The same sketch as a stored rollup's, so live and history visitor counts agree.
    pub visitors: Hll,
    /// Dimension code (see [`DimensionCode`]) → key → count.
    pub counts: BTreeMap<String, Counts>,
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

impl Bucket {
    pub fn add(&mut self, e: &Event) {
        self.visitors.insert(&e.visitor_id);
        for (dim, value) in rollup::contributions(e) {
            // Looked up before inserted: the dimension's key is allocated once per bucket,
            // not once per event.
            let counts = match self.counts.get_mut(dim.code()) {
                Some(counts) => counts,
                None => self.counts.entry(dim.code().to_string()).or_default(),
            };
            bump(counts, value, 1);
        }
    }

    pub fn merge(&mut self, other: &Bucket) {
        self.visitors.merge(&other.visitors);
        for (dim, from) in &other.counts {
            let into = self.counts.entry(dim.clone()).or_default();
            for (k, n) in from {
                bump(into, k, *n);
            }
        }
    }

    /// One dimension's counters (empty when nothing was counted).
    pub fn of(&self, dim: Dimension) -> Option<&Counts> {
        self.counts.get(dim.code())
    }

    pub fn pageviews(&self) -> u64 {
        self.of(Dimension::Event)
            .and_then(|c| c.get(rollup::PAGE_VIEW))
            .copied()
            .unwrap_or(0)
    }

    /// Events of every type.
    pub fn events(&self) -> u64 {
        self.of(Dimension::Event).map_or(0, |c| c.values().sum())
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
        // Only the newest events can ever be shown. Trimmed once it holds twice as many, so
        // the shift is paid once per FEED_LEN events, not on every one.
        let len = self.feed.len();
        if len >= 2 * protocol::live::FEED_LEN {
            self.feed.drain(..len - protocol::live::FEED_LEN);
        }
    }

    /// The newest [`protocol::live::FEED_LEN`] feed events (see [`MetricsDelta::add`]).
    fn trim_feed(&mut self) {
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
        self.sites
            .drain()
            .map(|(_, mut d)| {
                d.trim_feed();
                d
            })
            .collect()
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
