//! What a rollup counts, defined once for every store. Pure: no IO, no clock.
//!
//! A **rollup** is the aggregate of one site's events in one time bucket. Stores keep rollups
//! at three resolutions — minute, hour and UTC day — each incremented in the same write that
//! stores a *new* event (never a duplicate), so a query over any range reads a handful of
//! bucket documents instead of the events themselves:
//!
//! - [`cover`] splits a range `[from, to)` into the coarsest aligned buckets that fit, plus at
//!   most two sub-minute edges that are read from the raw events (through the `{site, ts}`
//!   index), so answers stay exact to the millisecond;
//! - [`Rollup::add_event`] is the one mapping from an event to increments, used both when
//!   writing rollups and when folding those edge events into an answer;
//! - [`Hll`] estimates distinct visitors and sessions.
//!
//! ## Layout
//! - this module: resolutions, [`contributions`], [`Rollup`], [`bucketize`], storage keys;
//! - `cover`: [`cover`] and [`merge_runs`], the range → buckets mapping;
//! - `hll`: [`Hll`], the one HyperLogLog (stored rollups and live metrics share it).

mod cover;
mod hll;

use std::collections::BTreeMap;

use protocol::stats::{Dimension, DIRECT, UNKNOWN};
use protocol::Event;

use crate::FastMap;

pub use cover::{cover, merge_runs, Cover, Run};
pub use hll::{Hll, HLL_P, HLL_REGISTERS};
pub use protocol::time::{DAY_MS, HOUR_MS, MINUTE_MS};

/// The resolution of a rollup bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Res {
    Minute,
    Hour,
    Day,
}

impl Res {
    pub const ALL: [Res; 3] = [Res::Minute, Res::Hour, Res::Day];

    pub fn ms(self) -> i64 {
        match self {
            Res::Minute => MINUTE_MS,
            Res::Hour => HOUR_MS,
            Res::Day => DAY_MS,
        }
    }

    /// The short code stores keep in their bucket keys.
    pub fn code(self) -> &'static str {
        match self {
            Res::Minute => "m",
            Res::Hour => "h",
            Res::Day => "d",
        }
    }

    pub fn from_code(code: &str) -> Option<Res> {
        Res::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Start of the bucket holding `ts` (UTC-aligned).
    pub fn bucket(self, ts: i64) -> i64 {
        ts.div_euclid(self.ms()) * self.ms()
    }
}

/// The one-letter codes stores use for a [`Dimension`] in their keys (short keys keep rollup
/// documents small). Part of the stored format: never change a code.
pub trait DimensionCode: Sized {
    fn code(self) -> &'static str;
    fn from_code(code: &str) -> Option<Self>;
}

impl DimensionCode for Dimension {
    fn code(self) -> &'static str {
        match self {
            Dimension::Event => "e",
            Dimension::Page => "p",
            Dimension::Entry => "l",
            Dimension::Referrer => "r",
            Dimension::UtmSource => "u",
            Dimension::Device => "d",
            Dimension::Browser => "b",
            Dimension::Os => "o",
            Dimension::Country => "c",
            // Never in rollups (visits and filters are answered from the visit and fact
            // tables), but codes are unique all the same.
            Dimension::EntryPage => "N",
            Dimension::ExitPage => "X",
            Dimension::UtmMedium => "M",
            Dimension::UtmCampaign => "C",
            Dimension::Region => "R",
            Dimension::City => "Y",
        }
    }

    fn from_code(code: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.code() == code)
    }
}

/// The dimensions rollups keep (what [`contributions`] writes).
pub const ROLLUP_DIMENSIONS: [Dimension; 9] = [
    Dimension::Event,
    Dimension::Page,
    Dimension::Entry,
    Dimension::Referrer,
    Dimension::UtmSource,
    Dimension::Device,
    Dimension::Browser,
    Dimension::Os,
    Dimension::Country,
];

pub const PAGE_VIEW: &str = "page_view";
pub const SESSION_START: &str = "session_start";

/// Bytes of a path as a rollup and live-view key. A stored event keeps up to
/// `protocol::validate::MAX_PATH_BYTES`; aggregates, which copy the key into a row per bucket
/// and resolution, keep the first 128 bytes (whole escapes and characters), so distinct long
/// paths cannot multiply the store's size (security review, issue 12).
pub const MAX_PATH_KEY_BYTES: usize = 128;

/// The most counters one event adds to (see [`contributions`]).
const MAX_CONTRIBUTIONS: usize = 9;

/// The counters one event adds to, each by one. This is THE definition of what rollups count.
/// An iterator over a fixed array: the write path calls it for every new event, so it
/// allocates nothing.
pub fn contributions(e: &Event) -> impl Iterator<Item = (Dimension, &str)> + '_ {
    let path = protocol::validate::cut_escaped(&e.path, MAX_PATH_KEY_BYTES);
    let mut out = [(Dimension::Event, ""); MAX_CONTRIBUTIONS];
    out[0] = (Dimension::Event, e.name.as_str());
    let mut n = 1;
    if e.name == SESSION_START {
        out[n] = (Dimension::Entry, path);
        n += 1;
    }
    if e.name == PAGE_VIEW {
        let referrer = e.referrer_host.as_deref().unwrap_or(DIRECT);
        out[n] = (Dimension::Page, path);
        out[n + 1] = (Dimension::Referrer, referrer);
        n += 2;
        if let Some(source) = e.utm_source.as_deref() {
            out[n] = (Dimension::UtmSource, source);
            n += 1;
        }
        out[n] = (Dimension::Device, e.device.as_str());
        out[n + 1] = (Dimension::Browser, e.browser.as_str());
        out[n + 2] = (Dimension::Os, e.os.as_str());
        out[n + 3] = (Dimension::Country, e.country.as_deref().unwrap_or(UNKNOWN));
        n += 4;
    }
    out.into_iter().take(n)
}

/// The aggregate of some events: one bucket as stored, or many merged for an answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rollup {
    pub counts: BTreeMap<(Dimension, String), u64>,
    pub visitors: Hll,
    pub sessions: Hll,
}

impl Rollup {
    pub fn add_event(&mut self, e: &Event) {
        for (dim, value) in contributions(e) {
            *self.counts.entry((dim, value.to_string())).or_insert(0) += 1;
        }
        self.visitors.insert(&e.visitor_id);
        if let Some(s) = &e.session_id {
            self.sessions.insert(s);
        }
    }

    pub fn merge(&mut self, other: &Rollup) {
        for (k, n) in &other.counts {
            *self.counts.entry(k.clone()).or_insert(0) += n;
        }
        self.visitors.merge(&other.visitors);
        self.sessions.merge(&other.sessions);
    }

    pub fn count(&self, dim: Dimension, value: &str) -> u64 {
        self.counts
            .get(&(dim, value.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Sum of one dimension's counters (for `Event`: every stored event).
    pub fn total(&self, dim: Dimension) -> u64 {
        self.of(dim).map(|(_, n)| n).sum()
    }

    /// One dimension's counters.
    pub fn of(&self, dim: Dimension) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.counts
            .range((dim, String::new())..)
            .take_while(move |((d, _), _)| *d == dim)
            .map(|((_, v), n)| (v.as_str(), *n))
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.visitors.is_empty() && self.sessions.is_empty()
    }
}

/// A rollup bucket key: `(site, resolution, bucket start)`.
pub type BucketKey = (String, Res, i64);

/// The rollup increments of newly stored events, per bucket at every resolution: what a
/// store adds in the same write that stored the events.
pub fn bucketize<'a>(events: impl IntoIterator<Item = &'a Event>) -> BTreeMap<BucketKey, Rollup> {
    let mut minutes: BTreeMap<BucketKey, Rollup> = BTreeMap::new();
    for e in events {
        minutes
            .entry((e.site.clone(), Res::Minute, Res::Minute.bucket(e.ts)))
            .or_default()
            .add_event(e);
    }
    // Hours and days are merges of the minutes, so all three always agree.
    let mut out = BTreeMap::new();
    for ((site, _, t), r) in &minutes {
        for res in [Res::Hour, Res::Day] {
            out.entry((site.clone(), res, res.bucket(*t)))
                .or_insert_with(Rollup::default)
                .merge(r);
        }
    }
    out.extend(minutes);
    out
}

/// Which of a rollup's two sketches a register belongs to (its stored code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sketch {
    Visitors = 0,
    Sessions = 1,
}

/// One counter of one bucket, borrowed from the events that increment it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountKey<'e> {
    pub site: &'e str,
    pub res: Res,
    pub bucket: i64,
    pub dim: Dimension,
    pub value: &'e str,
}

/// One sketch register of one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegisterKey<'e> {
    pub site: &'e str,
    pub res: Res,
    pub bucket: i64,
    pub sketch: Sketch,
    pub register: u16,
}

/// What newly stored events add to the rollups, aggregated for one write: each distinct
/// counter once with its sum, each distinct register once with its highest rank, at every
/// resolution — so a store does one upsert per distinct key per write, not ~30 per event.
/// Keys borrow from the events; building it allocates only the two maps. Entries are sorted
/// by the stores' key order (site, resolution code, bucket, dimension code, value), which
/// keeps a B-tree's upserts on neighbouring pages.
#[derive(Debug, Default, PartialEq)]
pub struct Increments<'e> {
    pub counts: Vec<(CountKey<'e>, u64)>,
    pub registers: Vec<(RegisterKey<'e>, u8)>,
}

impl<'e> Increments<'e> {
    pub fn of(events: impl IntoIterator<Item = &'e Event>) -> Self {
        // Minutes first; hours and days are merges of them, so all three always agree.
        let mut minute_counts: FastMap<(&'e str, i64, Dimension, &'e str), u64> =
            FastMap::default();
        let mut minute_regs: FastMap<(&'e str, i64, Sketch, u16), u8> = FastMap::default();
        for e in events {
            let site = e.site.as_str();
            let minute = Res::Minute.bucket(e.ts);
            for (dim, value) in contributions(e) {
                *minute_counts.entry((site, minute, dim, value)).or_insert(0) += 1;
            }
            let mut raise = |sketch, item: &str| {
                let (register, rank) = Hll::position(item);
                let r = minute_regs
                    .entry((site, minute, sketch, register))
                    .or_insert(0);
                *r = (*r).max(rank);
            };
            raise(Sketch::Visitors, &e.visitor_id);
            if let Some(session) = &e.session_id {
                raise(Sketch::Sessions, session);
            }
        }
        let mut counts: FastMap<CountKey<'e>, u64> =
            FastMap::with_capacity_and_hasher(minute_counts.len() * 2, Default::default());
        for ((site, minute, dim, value), n) in minute_counts {
            for res in Res::ALL {
                let key = CountKey {
                    site,
                    res,
                    bucket: res.bucket(minute),
                    dim,
                    value,
                };
                *counts.entry(key).or_insert(0) += n;
            }
        }
        let mut registers: FastMap<RegisterKey<'e>, u8> =
            FastMap::with_capacity_and_hasher(minute_regs.len() * 2, Default::default());
        for ((site, minute, sketch, register), rank) in minute_regs {
            for res in Res::ALL {
                let key = RegisterKey {
                    site,
                    res,
                    bucket: res.bucket(minute),
                    sketch,
                    register,
                };
                let r = registers.entry(key).or_insert(0);
                *r = (*r).max(rank);
            }
        }
        let mut counts: Vec<_> = counts.into_iter().collect();
        counts.sort_unstable_by(|(a, _), (b, _)| {
            (a.site, a.res.code(), a.bucket, a.dim.code(), a.value).cmp(&(
                b.site,
                b.res.code(),
                b.bucket,
                b.dim.code(),
                b.value,
            ))
        });
        let mut registers: Vec<_> = registers.into_iter().collect();
        registers.sort_unstable_by(|(a, _), (b, _)| {
            (a.site, a.res.code(), a.bucket, a.sketch, a.register).cmp(&(
                b.site,
                b.res.code(),
                b.bucket,
                b.sketch,
                b.register,
            ))
        });
        Increments { counts, registers }
    }
}

/// A counter key as a document field name: `<dimension code>:<value>`, with the characters
/// MongoDB gives meaning to in field paths (`.`, `$`) and the escape character itself
/// percent-encoded, so any path, host or event name is a safe key.
pub fn field_key(dim: Dimension, value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push_str(dim.code());
    out.push(':');
    for ch in value.chars() {
        match ch {
            '%' => out.push_str("%25"),
            '.' => out.push_str("%2E"),
            '$' => out.push_str("%24"),
            c => out.push(c),
        }
    }
    out
}

/// Reads back a [`field_key`]; `None` for a key this build does not know.
pub fn parse_field_key(key: &str) -> Option<(Dimension, String)> {
    let (code, escaped) = key.split_once(':')?;
    let dim = Dimension::from_code(code)?;
    let mut value = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(i) = rest.find('%') {
        value.push_str(&rest[..i]);
        let decoded = match rest.get(i..i + 3)? {
            "%25" => '%',
            "%2E" => '.',
            "%24" => '$',
            _ => return None,
        };
        value.push(decoded);
        rest = &rest[i + 3..];
    }
    value.push_str(rest);
    Some((dim, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::fixture::EventBuilder;
    use protocol::Device;

    fn ev(name: &str, path: &str) -> Event {
        EventBuilder::new("s", name, 0)
            .id("e1")
            .visitor("v1")
            .session("s1")
            .path(path)
            .referrer("news.ycombinator.com")
            .device(Device::Mobile)
            .browser("Safari")
            .os("iOS")
            .build()
    }

    #[test]
    fn page_views_count_in_every_dimension_other_events_only_by_name() {
        let mut r = Rollup::default();
        r.add_event(&ev("page_view", "/a.html"));
        r.add_event(&ev("click", "/a.html"));
        r.add_event(&ev("session_start", "/a.html"));
        assert_eq!(r.total(Dimension::Event), 3);
        assert_eq!(r.count(Dimension::Page, "/a.html"), 1);
        assert_eq!(r.count(Dimension::Entry, "/a.html"), 1);
        assert_eq!(r.count(Dimension::Referrer, "news.ycombinator.com"), 1);
        assert_eq!(r.count(Dimension::Country, UNKNOWN), 1);
        assert_eq!(r.total(Dimension::UtmSource), 0);
        assert_eq!(r.count(Dimension::Device, "mobile"), 1);
        assert_eq!(r.visitors.estimate(), 1);
        assert_eq!(r.sessions.estimate(), 1);
        let names: Vec<_> = r.of(Dimension::Event).collect();
        assert_eq!(
            names,
            vec![("click", 1), ("page_view", 1), ("session_start", 1)]
        );
    }

    #[test]
    fn bucketize_fills_every_resolution() {
        let mut a = ev("page_view", "/");
        a.ts = DAY_MS + HOUR_MS + 5;
        let mut b = ev("click", "/");
        b.ts = DAY_MS + 2 * HOUR_MS;
        let m = bucketize([&a, &b]);
        assert_eq!(m.len(), 2 + 2 + 1);
        let day = &m[&("s".to_string(), Res::Day, DAY_MS)];
        assert_eq!(day.total(Dimension::Event), 2);
        let hour = &m[&("s".to_string(), Res::Hour, DAY_MS + HOUR_MS)];
        assert_eq!(hour.total(Dimension::Event), 1);
    }

    #[test]
    fn increments_agree_with_bucketize() {
        let mut events = Vec::new();
        for i in 0..40i64 {
            let mut e = ev(
                if i % 3 == 0 {
                    "session_start"
                } else {
                    "page_view"
                },
                "/a",
            );
            e.ts = DAY_MS + i * 7 * MINUTE_MS + i;
            e.path = format!("/p{}", i % 4);
            e.visitor_id = format!("v{}", i % 5);
            e.session_id = Some(format!("s{}", i % 7));
            if i % 2 == 0 {
                e.utm_source = Some("hn".into());
            }
            events.push(e);
        }
        let inc = Increments::of(&events);
        let expected = bucketize(&events);
        let mut counted: BTreeMap<BucketKey, Rollup> = BTreeMap::new();
        for (k, n) in &inc.counts {
            *counted
                .entry((k.site.to_string(), k.res, k.bucket))
                .or_default()
                .counts
                .entry((k.dim, k.value.to_string()))
                .or_insert(0) += n;
        }
        for (k, rank) in &inc.registers {
            let r = counted
                .entry((k.site.to_string(), k.res, k.bucket))
                .or_default();
            match k.sketch {
                Sketch::Visitors => r.visitors.set(k.register, *rank),
                Sketch::Sessions => r.sessions.set(k.register, *rank),
            }
        }
        assert_eq!(counted, expected);
        let keys: Vec<_> = inc.counts.iter().map(|(k, _)| *k).collect();
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len(), "one entry per distinct counter");
    }

    #[test]
    fn merge_adds_counts_and_unions_sketches() {
        let mut a = Rollup::default();
        a.add_event(&ev("page_view", "/"));
        let mut other = ev("page_view", "/");
        other.visitor_id = "v2".into();
        let mut b = Rollup::default();
        b.add_event(&other);
        b.add_event(&ev("page_view", "/"));
        a.merge(&b);
        assert_eq!(a.count(Dimension::Page, "/"), 3);
        assert_eq!(a.visitors.estimate(), 2);
    }

    #[test]
    fn field_keys_escape_what_mongodb_reserves() {
        for value in ["/a.b/$x", "100%.", "", "plain", "%2E", "ü.ñ"] {
            let key = field_key(Dimension::Page, value);
            assert!(!key.contains('.') && !key.contains('$'), "{key}");
            assert_eq!(parse_field_key(&key), Some((Dimension::Page, value.into())));
        }
        assert_eq!(parse_field_key("zz:x"), None);
        assert_eq!(parse_field_key("p:%4"), None);
    }
}
