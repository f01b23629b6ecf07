//! The live state of every site, fed by [`MetricsDelta`]s and read as
//! [`LiveMetrics`]. Pure: no IO, no clock of its own — callers pass `now`, so tests control
//! time. Memory is bounded whatever the traffic, in **bytes** (the security review, issue 12,
//! grew it to half a gigabyte with long paths): 60 minute buckets per site, capped dimensions
//! in each, a 50-event feed; new keys of a site beyond [`LiveLimits::max_site_bytes`] count
//! under "(other)"; and beyond [`LiveLimits::max_sites`] sites or
//! [`LiveLimits::max_total_bytes`] in all, the site with the *fewest events today* is
//! forgotten — so a crowd of made-up sites with an event each can only push out each other,
//! never a site with real traffic.

use std::collections::{BTreeMap, HashMap, VecDeque};

use protocol::live::{
    Breakdowns, Count, FeedEvent, LiveMetrics, MinutePoint, Totals, ACTIVE_WINDOW_MINUTES,
    FEED_LEN, RECENT_WINDOW_MINUTES, SERIES_MINUTES, TOP_N,
};

use super::delta::{Bucket, Counts, MetricsDelta};
use protocol::stats::Dimension;

use crate::rollup::Hll;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// Sites tracked at once; the one with the fewest events today is forgotten beyond this.
pub const DEFAULT_MAX_SITES: usize = 10_000;

/// The live view's memory bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveLimits {
    pub max_sites: usize,
    /// One site's buckets and feed; new keys beyond it count under "(other)".
    pub max_site_bytes: usize,
    /// Every site's; beyond it the lightest sites are forgotten.
    pub max_total_bytes: usize,
}

impl Default for LiveLimits {
    fn default() -> Self {
        LiveLimits {
            max_sites: DEFAULT_MAX_SITES,
            max_site_bytes: 8 * 1024 * 1024,
            max_total_bytes: 256 * 1024 * 1024,
        }
    }
}

/// What a feed event costs, estimated like a key (see `delta::KEY_OVERHEAD_BYTES`).
fn feed_bytes(f: &FeedEvent) -> usize {
    128 + f.event.len()
        + f.path.len()
        + f.browser.len()
        + f.referrer.as_ref().map_or(0, String::len)
}

#[derive(Debug, Default)]
struct SiteState {
    /// Minute start → bucket, only the last [`SERIES_MINUTES`].
    minutes: BTreeMap<i64, Bucket>,
    /// (UTC day number, everything of that day).
    today: Option<(i64, Bucket)>,
    feed: VecDeque<FeedEvent>,
    next_seq: u64,
    /// Bumped on every change, so publishers can tell whether to recompute.
    version: u64,
    last_active: i64,
    /// Memory of the buckets and the feed, as the budgets count it.
    bytes: usize,
    /// Events of today: what decides which site is forgotten first.
    events_today: u64,
}

#[derive(Debug)]
pub struct LiveEngine {
    sites: HashMap<String, SiteState>,
    limits: LiveLimits,
    /// Sum of every site's `bytes`.
    total_bytes: usize,
}

impl Default for LiveEngine {
    fn default() -> Self {
        Self::with_limits(LiveLimits::default())
    }
}

fn minute_of(ms: i64) -> i64 {
    ms.div_euclid(MINUTE_MS) * MINUTE_MS
}

impl LiveEngine {
    pub fn new(max_sites: usize) -> Self {
        Self::with_limits(LiveLimits {
            max_sites,
            ..LiveLimits::default()
        })
    }

    pub fn with_limits(limits: LiveLimits) -> Self {
        LiveEngine {
            sites: HashMap::new(),
            limits: LiveLimits {
                max_sites: limits.max_sites.max(1),
                ..limits
            },
            total_bytes: 0,
        }
    }

    /// Memory of every site's state, as the budgets count it.
    pub fn bytes(&self) -> usize {
        self.total_bytes
    }

    /// Merges a delta in. Minutes older than the series window still count for today when
    /// they fall on today's UTC date; anything older is ignored (history is the store's job).
    pub fn apply(&mut self, delta: &MetricsDelta, now: i64) {
        if delta.minutes.is_empty() && delta.feed.is_empty() {
            return;
        }
        if !self.sites.contains_key(&delta.site) && self.sites.len() >= self.limits.max_sites {
            self.evict_lightest(None);
        }
        let limits = self.limits;
        let site = self.sites.entry(delta.site.clone()).or_default();
        let bytes_before = site.bytes;
        // Whatever is left of the site's budget; spent by new keys only.
        let mut budget = limits.max_site_bytes.saturating_sub(site.bytes);
        let mut grown = 0;
        let oldest_kept = minute_of(now) - (SERIES_MINUTES as i64 - 1) * MINUTE_MS;
        let today = now.div_euclid(DAY_MS);
        for (&minute, bucket) in &delta.minutes {
            if minute >= oldest_kept && minute <= now + MINUTE_MS {
                grown += site
                    .minutes
                    .entry(minute)
                    .or_default()
                    .merge_within(bucket, &mut budget);
            }
            if minute.div_euclid(DAY_MS) == today {
                match &mut site.today {
                    Some((day, b)) if *day == today => grown += b.merge_within(bucket, &mut budget),
                    stale => {
                        let dropped = stale.as_ref().map_or(0, |(_, b)| b.bytes());
                        site.bytes = site.bytes.saturating_sub(dropped);
                        let mut fresh = Bucket::default();
                        grown += fresh.merge_within(bucket, &mut budget);
                        *stale = Some((today, fresh));
                    }
                }
            }
        }
        site.bytes += grown;
        for f in &delta.feed {
            site.next_seq += 1;
            site.bytes += feed_bytes(f);
            site.feed.push_back(FeedEvent {
                seq: site.next_seq,
                ..f.clone()
            });
        }
        while site.feed.len() > FEED_LEN {
            if let Some(old) = site.feed.pop_front() {
                site.bytes = site.bytes.saturating_sub(feed_bytes(&old));
            }
        }
        let mut dropped = 0;
        site.minutes.retain(|&m, b| {
            let keep = m >= oldest_kept;
            if !keep {
                dropped += b.bytes();
            }
            keep
        });
        site.bytes = site.bytes.saturating_sub(dropped);
        site.events_today = match &site.today {
            Some((day, b)) if *day == today => b.events(),
            _ => 0,
        };
        site.version += 1;
        site.last_active = now;
        self.total_bytes = (self.total_bytes + site.bytes).saturating_sub(bytes_before);
        while self.total_bytes > limits.max_total_bytes && self.sites.len() > 1 {
            if !self.evict_lightest(Some(&delta.site)) {
                break;
            }
        }
    }

    /// Forgets the site with the fewest events today (the least recently active among
    /// equals), never `keep`. False when there was nothing to forget.
    fn evict_lightest(&mut self, keep: Option<&str>) -> bool {
        let lightest = self
            .sites
            .iter()
            .filter(|(k, _)| Some(k.as_str()) != keep)
            .min_by_key(|(_, s)| (s.events_today, s.last_active))
            .map(|(k, _)| k.clone());
        match lightest.and_then(|k| self.sites.remove(&k)) {
            Some(gone) => {
                self.total_bytes = self.total_bytes.saturating_sub(gone.bytes);
                true
            }
            None => false,
        }
    }

    /// A number that changes whenever `site`'s state does.
    pub fn version(&self, site: &str) -> u64 {
        self.sites.get(site).map_or(0, |s| s.version)
    }

    pub fn sites(&self) -> impl Iterator<Item = &str> {
        self.sites.keys().map(String::as_str)
    }

    /// The state of `site` as of `now` (windows are relative to `now`).
    pub fn metrics(&self, site: &str, now: i64) -> LiveMetrics {
        let Some(state) = self.sites.get(site) else {
            return LiveMetrics {
                per_minute: empty_series(now),
                ..Default::default()
            };
        };
        let current = minute_of(now);
        let window = |minutes: usize| {
            let from = current - (minutes as i64 - 1) * MINUTE_MS;
            state
                .minutes
                .range(from..=current + MINUTE_MS)
                .map(|(_, b)| b)
        };

        let mut active = Hll::default();
        for b in window(ACTIVE_WINDOW_MINUTES) {
            active.merge(&b.visitors);
        }
        let mut recent = Bucket::default();
        for b in window(RECENT_WINDOW_MINUTES) {
            recent.merge(b);
        }
        let per_minute = (0..SERIES_MINUTES as i64)
            .rev()
            .map(|back| {
                let minute = current - back * MINUTE_MS;
                let b = state.minutes.get(&minute);
                MinutePoint {
                    minute,
                    pageviews: b.map_or(0, Bucket::pageviews),
                    visitors: b.map_or(0, |b| b.visitors.estimate()),
                }
            })
            .collect();
        let today = match &state.today {
            Some((day, b)) if *day == now.div_euclid(DAY_MS) => Totals {
                pageviews: b.pageviews(),
                visitors: b.visitors.estimate(),
                events: b.events(),
                breakdowns: breakdowns(b),
                ..Totals::default()
            },
            _ => Totals::default(),
        };
        LiveMetrics {
            active_visitors: active.estimate(),
            per_minute,
            recent: breakdowns(&recent),
            today,
        }
    }

    /// The feed of `site`, oldest first.
    pub fn feed(&self, site: &str) -> Vec<FeedEvent> {
        self.sites
            .get(site)
            .map(|s| s.feed.iter().cloned().collect())
            .unwrap_or_default()
    }
}

fn empty_series(now: i64) -> Vec<MinutePoint> {
    let current = minute_of(now);
    (0..SERIES_MINUTES as i64)
        .rev()
        .map(|back| MinutePoint {
            minute: current - back * MINUTE_MS,
            ..Default::default()
        })
        .collect()
}

fn top(counts: &Counts) -> Vec<Count> {
    let mut v: Vec<Count> = counts
        .iter()
        .map(|(k, n)| Count {
            key: k.clone(),
            count: *n,
        })
        .collect();
    // Highest first; ties by key so the order is stable between ticks.
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    v.truncate(TOP_N);
    v
}

/// The built-in event names; every other name is a custom event.
fn is_builtin(name: &str) -> bool {
    matches!(
        name,
        "page_view" | "click" | "session_start" | "session_end" | "outbound"
    )
}

fn breakdowns(b: &Bucket) -> Breakdowns {
    let of = |dim| b.of(dim).map(top).unwrap_or_default();
    let custom: Counts = b
        .of(Dimension::Event)
        .map(|events| {
            events
                .iter()
                .filter(|(name, _)| !is_builtin(name))
                .map(|(k, n)| (k.clone(), *n))
                .collect()
        })
        .unwrap_or_default();
    Breakdowns {
        pages: of(Dimension::Page),
        entry_pages: of(Dimension::Entry),
        referrers: of(Dimension::Referrer),
        utm_sources: of(Dimension::UtmSource),
        devices: of(Dimension::Device),
        browsers: of(Dimension::Browser),
        os: of(Dimension::Os),
        countries: of(Dimension::Country),
        custom_events: top(&custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::delta::deltas_of;
    use crate::live::test_event as ev;
    use proptest::prelude::*;

    const T0: i64 = 1_800_000_000_000 - 1_800_000_000_000 % DAY_MS + 12 * 3_600_000; // noon UTC

    fn engine_with(events: &[protocol::Event], now: i64) -> LiveEngine {
        let mut engine = LiveEngine::default();
        for d in deltas_of(events) {
            engine.apply(&d, now);
        }
        engine
    }

    #[test]
    fn active_visitors_expire_after_five_minutes() {
        let events = [
            ev("s", "page_view", "/", "alice", T0),
            ev("s", "page_view", "/a", "bob", T0 + 1000),
            ev("s", "page_view", "/b", "alice", T0 + 2000),
        ];
        let engine = engine_with(&events, T0 + 2000);
        assert_eq!(engine.metrics("s", T0 + 2000).active_visitors, 2);
        // Still inside the window 4 minutes later...
        assert_eq!(engine.metrics("s", T0 + 4 * MINUTE_MS).active_visitors, 2);
        // ...gone once the minute they fell in leaves the 5-minute window.
        assert_eq!(engine.metrics("s", T0 + 5 * MINUTE_MS).active_visitors, 0);
        // Today's totals keep them.
        let m = engine.metrics("s", T0 + 5 * MINUTE_MS);
        assert_eq!((m.today.pageviews, m.today.visitors), (3, 2));
    }

    #[test]
    fn per_minute_series_is_sixty_points_ending_now() {
        let events = [
            ev("s", "page_view", "/", "a", T0 - 10 * MINUTE_MS),
            ev("s", "page_view", "/", "b", T0 - 10 * MINUTE_MS + 5),
            ev("s", "page_view", "/", "c", T0),
            ev("s", "page_view", "/", "d", T0 - 61 * MINUTE_MS),
        ];
        let m = engine_with(&events, T0).metrics("s", T0);
        assert_eq!(m.per_minute.len(), SERIES_MINUTES);
        assert_eq!(m.per_minute[59].minute, minute_of(T0));
        assert_eq!(m.per_minute[59].pageviews, 1);
        assert_eq!(m.per_minute[49].pageviews, 2);
        assert_eq!(m.per_minute.iter().map(|p| p.pageviews).sum::<u64>(), 3);
        assert_eq!(
            m.today.pageviews, 4,
            "older than an hour still counts today"
        );
    }

    #[test]
    fn top_pages_over_thirty_minutes_and_custom_events() {
        let mut events = Vec::new();
        for i in 0..5 {
            events.push(ev("s", "page_view", "/pricing", &format!("v{i}"), T0));
        }
        for i in 0..3 {
            events.push(ev(
                "s",
                "page_view",
                "/docs",
                &format!("v{i}"),
                T0 - 20 * MINUTE_MS,
            ));
        }
        events.push(ev("s", "page_view", "/old", "v9", T0 - 31 * MINUTE_MS));
        events.push(ev("s", "signup", "/pricing", "v1", T0));
        events.push(ev("s", "session_start", "/docs", "v1", T0));
        let m = engine_with(&events, T0).metrics("s", T0);
        let pages: Vec<(&str, u64)> = m
            .recent
            .pages
            .iter()
            .map(|c| (c.key.as_str(), c.count))
            .collect();
        assert_eq!(pages, [("/pricing", 5), ("/docs", 3)]);
        assert_eq!(m.recent.custom_events[0].key, "signup");
        assert_eq!(m.recent.entry_pages[0].key, "/docs");
        assert_eq!(m.today.breakdowns.pages.len(), 3);
    }

    #[test]
    fn feed_keeps_the_latest_fifty_with_increasing_seq() {
        let events: Vec<_> = (0..70)
            .map(|i| ev("s", "click", &format!("/p{i}"), "v", T0 + i))
            .collect();
        let engine = engine_with(&events, T0 + 100);
        let feed = engine.feed("s");
        assert_eq!(feed.len(), FEED_LEN);
        assert_eq!(feed.last().map(|f| f.path.as_str()), Some("/p69"));
        assert!(feed.windows(2).all(|w| w[0].seq < w[1].seq));
    }

    #[test]
    fn today_resets_at_utc_midnight() {
        let midnight = T0 - T0.rem_euclid(DAY_MS) + DAY_MS;
        let engine = engine_with(
            &[ev("s", "page_view", "/", "a", midnight - 1000)],
            midnight - 1000,
        );
        assert_eq!(engine.metrics("s", midnight - 1).today.pageviews, 1);
        assert_eq!(engine.metrics("s", midnight + 1).today.pageviews, 0);
    }

    #[test]
    fn junk_sites_cannot_push_out_a_site_with_traffic() {
        let mut engine = LiveEngine::new(100);
        let busy: Vec<_> = (0..500)
            .map(|i| ev("real.test", "page_view", "/", &format!("v{i}"), T0))
            .collect();
        for d in deltas_of(&busy) {
            engine.apply(&d, T0);
        }
        // A crowd of made-up sites with an event each, all more recent than the real one.
        for i in 0..1000 {
            for d in deltas_of(&[ev(&format!("junk{i}"), "page_view", "/", "v", T0)]) {
                engine.apply(&d, T0 + 1 + i);
            }
        }
        assert_eq!(engine.sites().count(), 100);
        assert_eq!(engine.metrics("real.test", T0 + 2000).today.pageviews, 500);
    }

    #[test]
    fn memory_is_bounded_per_site_and_in_all() {
        let limits = LiveLimits {
            max_sites: 1000,
            max_site_bytes: 256 * 1024,
            max_total_bytes: 1024 * 1024,
        };
        let mut engine = LiveEngine::with_limits(limits);
        let long = "%F0%90%80%80".repeat(42);
        for site in 0..20 {
            let events: Vec<_> = (0..3000)
                .map(|i| {
                    ev(
                        &format!("s{site}"),
                        "page_view",
                        &format!("/{i}/{long}"),
                        &format!("v{i}"),
                        T0 - (i % 50) * MINUTE_MS,
                    )
                })
                .collect();
            for d in deltas_of(&events) {
                engine.apply(&d, T0);
            }
            let m = engine.metrics(&format!("s{site}"), T0);
            assert_eq!(m.today.pageviews, 3000, "every count kept");
        }
        let real: usize = engine
            .sites
            .values()
            .map(|s| {
                s.minutes.values().map(Bucket::bytes).sum::<usize>()
                    + s.today.as_ref().map_or(0, |(_, b)| b.bytes())
            })
            .sum();
        assert!(
            engine.bytes() <= limits.max_total_bytes,
            "{}",
            engine.bytes()
        );
        assert!(
            real <= engine.bytes(),
            "the count covers the buckets: {real}"
        );
        assert!(engine
            .sites
            .values()
            .all(|s| s.bytes <= limits.max_site_bytes + 64 * 1024));
    }

    #[test]
    fn sites_are_bounded() {
        let mut engine = LiveEngine::new(3);
        for (i, site) in ["a", "b", "c", "d"].iter().enumerate() {
            for d in deltas_of(&[ev(site, "page_view", "/", "v", T0)]) {
                engine.apply(&d, T0 + i as i64);
            }
        }
        let mut sites: Vec<&str> = engine.sites().collect();
        sites.sort_unstable();
        assert_eq!(sites, ["b", "c", "d"]);
    }

    fn arb_event() -> impl Strategy<Value = protocol::Event> {
        (
            prop_oneof![
                Just("page_view"),
                Just("click"),
                Just("session_start"),
                Just("signup")
            ],
            0..8u8,
            0..40u16,
            0..(40 * MINUTE_MS),
        )
            .prop_map(|(name, page, visitor, offset)| {
                ev(
                    "s",
                    name,
                    &format!("/p{page}"),
                    &format!("v{visitor}"),
                    T0 - offset,
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Two processors each aggregating half the events, merged at a gateway, give what
        /// one engine fed everything gives.
        #[test]
        fn merging_two_engines_deltas_equals_one_engine(
            events in prop::collection::vec(arb_event(), 0..200),
            split in any::<prop::sample::Index>(),
        ) {
            let cut = if events.is_empty() { 0 } else { split.index(events.len()) };
            let (left, right) = events.split_at(cut);
            let mut merged = LiveEngine::default();
            for d in deltas_of(left).iter().chain(deltas_of(right).iter()) {
                merged.apply(d, T0);
            }
            let single = engine_with(&events, T0);
            prop_assert_eq!(merged.metrics("s", T0), single.metrics("s", T0));
        }
    }
}
