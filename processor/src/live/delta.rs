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
/// What one new key costs in memory besides its bytes: the map node, the `String` and the
/// count. An estimate, used for byte budgets (the live view's, a delta's).
pub const KEY_OVERHEAD_BYTES: usize = 64;
/// Bytes of keys one site's delta may hold (what a processor publishes every quarter second
/// must stay far below Kafka's message size); keys beyond it count under [`OTHER`].
pub const MAX_DELTA_KEY_BYTES: usize = 256 * 1024;

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

/// Counts `by` for `key`. A new key is kept only within [`MAX_KEYS_PER_DIMENSION`] and what
/// is left of `budget` (bytes, decreased by what it costs); otherwise it counts under
/// [`OTHER`], so totals stay exact while memory stays bounded.
fn bump(counts: &mut Counts, key: &str, by: u64, budget: &mut usize) {
    if let Some(n) = counts.get_mut(key) {
        *n += by;
        return;
    }
    let cost = key.len() + KEY_OVERHEAD_BYTES;
    let key = if counts.len() < MAX_KEYS_PER_DIMENSION && cost <= *budget {
        key
    } else {
        OTHER
    };
    match counts.get_mut(key) {
        Some(n) => *n += by,
        None => {
            *budget = budget.saturating_sub(key.len() + KEY_OVERHEAD_BYTES);
            counts.insert(key.to_string(), by);
        }
    }
}

impl Bucket {
    pub fn add(&mut self, e: &Event) {
        let mut unlimited = usize::MAX;
        self.add_within(e, &mut unlimited);
    }

    /// [`Bucket::add`] keeping new keys within `budget` bytes (see `bump`). Returns the bytes
    /// it took.
    pub fn add_within(&mut self, e: &Event, budget: &mut usize) -> usize {
        let (before, hll) = (*budget, self.visitors.heap_bytes());
        self.visitors.insert(&e.visitor_id);
        for (dim, value) in rollup::contributions(e) {
            // Looked up before inserted: the dimension's key is allocated once per bucket,
            // not once per event.
            let counts = match self.counts.get_mut(dim.code()) {
                Some(counts) => counts,
                None => self.counts.entry(dim.code().to_string()).or_default(),
            };
            bump(counts, value, 1, budget);
        }
        let grown = self.visitors.heap_bytes().saturating_sub(hll);
        *budget = budget.saturating_sub(grown);
        before.saturating_sub(*budget)
    }

    pub fn merge(&mut self, other: &Bucket) {
        let mut unlimited = usize::MAX;
        self.merge_within(other, &mut unlimited);
    }

    /// [`Bucket::merge`] keeping new keys within `budget` bytes (see `bump`); the sketch
    /// always merges (it is at most 4 KiB). Returns the bytes it took.
    pub fn merge_within(&mut self, other: &Bucket, budget: &mut usize) -> usize {
        let (before, hll) = (*budget, self.visitors.heap_bytes());
        self.visitors.merge(&other.visitors);
        for (dim, from) in &other.counts {
            let into = self.counts.entry(dim.clone()).or_default();
            for (k, n) in from {
                bump(into, k, *n, budget);
            }
        }
        let grown = self.visitors.heap_bytes().saturating_sub(hll);
        *budget = budget.saturating_sub(grown);
        before.saturating_sub(*budget)
    }

    /// Memory this bucket takes, estimated as the budgets count it.
    pub fn bytes(&self) -> usize {
        self.visitors.heap_bytes()
            + self
                .counts
                .values()
                .flat_map(|c| c.keys())
                .map(|k| k.len() + KEY_OVERHEAD_BYTES)
                .sum::<usize>()
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
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsDelta {
    pub v: u32,
    pub site: String,
    /// Minute start (ms since the epoch) → what happened in that minute.
    pub minutes: BTreeMap<i64, Bucket>,
    /// The newest events for the live feed (without `seq`; the engine numbers them).
    pub feed: Vec<FeedEvent>,
    /// The store write whose fresh events this delta counts (see
    /// [`crate::store::InsertOutcome::write`]): a write may be published twice (its
    /// processor died before it knew the first went out), and a hub applies each write of a
    /// site once. Absent from deltas of untracked writes; older gateways ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write: Option<String>,
    /// What is left of [`MAX_DELTA_KEY_BYTES`] (not sent: a receiver has its own budget).
    #[serde(skip, default = "full_delta_budget")]
    budget: usize,
}

fn full_delta_budget() -> usize {
    MAX_DELTA_KEY_BYTES
}

/// Equal when what is sent is equal (the budget left is bookkeeping).
impl PartialEq for MetricsDelta {
    fn eq(&self, other: &Self) -> bool {
        (self.v, &self.site, &self.minutes, &self.feed, &self.write)
            == (
                other.v,
                &other.site,
                &other.minutes,
                &other.feed,
                &other.write,
            )
    }
}

impl MetricsDelta {
    pub fn new(site: impl Into<String>) -> Self {
        MetricsDelta {
            v: DELTA_VERSION,
            site: site.into(),
            minutes: BTreeMap::new(),
            feed: Vec::new(),
            write: None,
            budget: MAX_DELTA_KEY_BYTES,
        }
    }

    pub fn add(&mut self, e: &Event) {
        let minute = e.ts.div_euclid(MINUTE_MS) * MINUTE_MS;
        self.minutes
            .entry(minute)
            .or_default()
            .add_within(e, &mut self.budget);
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

/// The deltas of one store write's events, each tagged with the write when the store named
/// one, so a gateway applies them once however often they are published.
pub fn deltas_of_write<'a>(
    write: Option<&str>,
    events: impl IntoIterator<Item = &'a Event>,
) -> Vec<MetricsDelta> {
    let mut deltas = deltas_of(events);
    for d in &mut deltas {
        d.write = write.map(str::to_string);
    }
    deltas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_dimensions_overflow_into_other() {
        let mut counts = Counts::new();
        let mut budget = usize::MAX;
        let unlimited = &mut budget;
        for i in 0..MAX_KEYS_PER_DIMENSION + 10 {
            bump(&mut counts, &format!("/p{i}"), 1, unlimited);
        }
        assert_eq!(counts.len(), MAX_KEYS_PER_DIMENSION + 1);
        assert_eq!(counts.get(OTHER), Some(&10));
        bump(&mut counts, "/p0", 1, unlimited);
        assert_eq!(counts.get("/p0"), Some(&2), "existing keys still count");
    }

    #[test]
    fn long_keys_overflow_into_other_once_the_budget_is_spent() {
        let mut counts = Counts::new();
        let mut budget = 3 * (500 + KEY_OVERHEAD_BYTES);
        for i in 0..10 {
            bump(
                &mut counts,
                &format!("{i}{}", "x".repeat(499)),
                1,
                &mut budget,
            );
        }
        assert_eq!(counts.len(), 4, "three long keys and (other)");
        assert_eq!(counts.get(OTHER), Some(&7));
        assert_eq!(counts.values().sum::<u64>(), 10, "every count kept");

        // A delta of one site stays within its budget, whatever the paths.
        let mut d = MetricsDelta::new("s");
        for i in 0..2000 {
            let mut e = crate::live::test_event("s", "page_view", "/", "v", 1_800_000_000_000);
            e.path = format!("/{i}/{}", "%F0%90%80%80".repeat(40));
            d.add(&e);
        }
        let bytes: usize = d.minutes.values().map(Bucket::bytes).sum();
        assert!(bytes <= MAX_DELTA_KEY_BYTES + 8 * 1024, "{bytes}");
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
