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
//! ## Why a HyperLogLog, and why stored register by register
//! Unique visitors over an arbitrary range must be mergeable across buckets: sums of per-bucket
//! visitor counts would count a visitor once per minute. Exact per-bucket visitor sets grow
//! with traffic (a day bucket of a busy site would hold every visitor id, and MongoDB's
//! `$addToSet` is linear in the set). A HyperLogLog with 2^12 registers has a standard error
//! of 1.04/√4096 ≈ 1.6 % (within the 2 % budget), is at most 4096 small numbers however large
//! the site, and — the deciding property — merges by taking each register's maximum. Stores
//! therefore keep only the non-zero registers, each as its own field/row, and update them with
//! an atomic `$max` (MongoDB) or `max()` upsert (SQLite): concurrent processors can never lose
//! each other's updates, which an opaque sketch blob from a crate would need a
//! read-modify-write cycle for. The estimator is Ertl's improved raw estimator (2017), which is
//! unbiased over the whole range without empirical bias tables, so small counts (the common
//! case of a minute bucket) come out exact or within one.

use std::collections::BTreeMap;

use protocol::Event;

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

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

/// What a breakdown can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// Every event, by name (custom events included).
    Event,
    /// Page views by path.
    Page,
    /// Entry pages: the path of each `session_start`.
    Entry,
    /// Page views by referrer host; `(direct)` when there is none.
    Referrer,
    /// Page views by `utm_source` (events without one are not counted here).
    UtmSource,
    Device,
    Browser,
    Os,
    /// Page views by country (derived from the time zone); `(unknown)` when there is none.
    Country,
}

/// Label of page views without an external referrer.
pub const DIRECT: &str = "(direct)";
/// Label of page views whose country is unknown.
pub const UNKNOWN: &str = "(unknown)";

impl Dimension {
    pub const ALL: [Dimension; 9] = [
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

    /// The name the API uses (`?dimension=`).
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Event => "event",
            Dimension::Page => "page",
            Dimension::Entry => "entry",
            Dimension::Referrer => "referrer",
            Dimension::UtmSource => "utm_source",
            Dimension::Device => "device",
            Dimension::Browser => "browser",
            Dimension::Os => "os",
            Dimension::Country => "country",
        }
    }

    /// The one-letter code stores use in keys (short keys keep rollup documents small).
    pub fn code(self) -> &'static str {
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
        }
    }

    pub fn from_name(name: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.name() == name)
    }

    pub fn from_code(code: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.code() == code)
    }
}

pub const PAGE_VIEW: &str = "page_view";
pub const SESSION_START: &str = "session_start";

/// The counters one event adds to, each by one. This is THE definition of what rollups count.
pub fn contributions(e: &Event) -> Vec<(Dimension, &str)> {
    let mut out = vec![(Dimension::Event, e.name.as_str())];
    if e.name == SESSION_START {
        out.push((Dimension::Entry, e.path.as_str()));
    }
    if e.name == PAGE_VIEW {
        out.push((Dimension::Page, e.path.as_str()));
        out.push((
            Dimension::Referrer,
            e.referrer_host.as_deref().unwrap_or(DIRECT),
        ));
        if let Some(source) = e.utm_source.as_deref() {
            out.push((Dimension::UtmSource, source));
        }
        out.push((Dimension::Device, e.device.as_str()));
        out.push((Dimension::Browser, e.browser.as_str()));
        out.push((Dimension::Os, e.os.as_str()));
        out.push((Dimension::Country, e.country.as_deref().unwrap_or(UNKNOWN)));
    }
    out
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

// ---------------------------------------------------------------------------------------------
// Range cover

/// A run of consecutive buckets of one resolution: starts `from, from + res, ..` below `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Run {
    pub res: Res,
    pub from: i64,
    pub to: i64,
}

impl Run {
    pub fn buckets(&self) -> impl Iterator<Item = i64> {
        let (step, from, to) = (self.res.ms(), self.from, self.to);
        (0..)
            .map(move |i| from + i * step)
            .take_while(move |t| *t < to)
    }
}

/// How to answer a range: rollup runs plus raw-event ranges (each shorter than a minute).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cover {
    pub runs: Vec<Run>,
    pub raw: Vec<(i64, i64)>,
}

fn ceil_to(t: i64, step: i64) -> i64 {
    -((-t).div_euclid(step) * step)
}

fn floor_to(t: i64, step: i64) -> i64 {
    t.div_euclid(step) * step
}

/// The coarsest cover of `[from, to)`: whole days in the middle, hours and minutes towards
/// the edges, raw events for the sub-minute ends. At most 2 raw ranges, 2 minute runs, 2 hour
/// runs and 1 day run, whatever the length of the range.
pub fn cover(from: i64, to: i64) -> Cover {
    let mut c = Cover::default();
    if from >= to {
        return c;
    }
    let push_run = |c: &mut Cover, res: Res, from: i64, to: i64| {
        if from < to {
            c.runs.push(Run { res, from, to });
        }
    };
    let (m0, m1) = (ceil_to(from, MINUTE_MS), floor_to(to, MINUTE_MS));
    if m0 >= m1 {
        c.raw.push((from, to));
        return c;
    }
    if from < m0 {
        c.raw.push((from, m0));
    }
    if m1 < to {
        c.raw.push((m1, to));
    }
    let (h0, h1) = (ceil_to(m0, HOUR_MS), floor_to(m1, HOUR_MS));
    if h0 >= h1 {
        push_run(&mut c, Res::Minute, m0, m1);
        return c;
    }
    push_run(&mut c, Res::Minute, m0, h0);
    push_run(&mut c, Res::Minute, h1, m1);
    let (d0, d1) = (ceil_to(h0, DAY_MS), floor_to(h1, DAY_MS));
    if d0 >= d1 {
        push_run(&mut c, Res::Hour, h0, h1);
        return c;
    }
    push_run(&mut c, Res::Hour, h0, d0);
    push_run(&mut c, Res::Hour, d1, h1);
    push_run(&mut c, Res::Day, d0, d1);
    c
}

/// Sorts runs and joins touching runs of the same resolution, so a store reads each stretch
/// of buckets with one range query.
pub fn merge_runs(mut runs: Vec<Run>) -> Vec<Run> {
    runs.sort();
    let mut out: Vec<Run> = Vec::with_capacity(runs.len());
    for r in runs {
        match out.last_mut() {
            Some(last) if last.res == r.res && r.from <= last.to => last.to = last.to.max(r.to),
            _ => out.push(r),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// HyperLogLog

/// log2 of the register count: 4096 registers, standard error ≈ 1.6 %.
pub const HLL_P: u32 = 12;
pub const HLL_REGISTERS: usize = 1 << HLL_P;
/// Largest register value: the rank of a 64-bit hash after the index bits.
const HLL_Q: u32 = 64 - HLL_P;

/// A HyperLogLog sketch (see the module docs). Empty until the first insert, so rollups of
/// buckets without visitors cost nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hll {
    registers: Vec<u8>,
}

impl Hll {
    /// The register and rank an item sets.
    pub fn position(item: &str) -> (u16, u8) {
        let hash = blake3::hash(item.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash.as_bytes()[..8]);
        let h = u64::from_le_bytes(first);
        let index = (h >> HLL_Q) as u16;
        let rest = h << HLL_P;
        let rank = if rest == 0 {
            HLL_Q + 1
        } else {
            rest.leading_zeros().min(HLL_Q) + 1
        };
        (index, rank as u8)
    }

    pub fn insert(&mut self, item: &str) {
        let (index, rank) = Hll::position(item);
        self.set(index, rank);
    }

    /// Raises register `index` to `rank` (merging is a maximum). Out-of-range input from a
    /// damaged store row is ignored rather than trusted.
    pub fn set(&mut self, index: u16, rank: u8) {
        let i = usize::from(index);
        if i >= HLL_REGISTERS || u32::from(rank) > HLL_Q + 1 {
            return;
        }
        if self.registers.is_empty() {
            self.registers = vec![0; HLL_REGISTERS];
        }
        if self.registers[i] < rank {
            self.registers[i] = rank;
        }
    }

    pub fn merge(&mut self, other: &Hll) {
        for (i, rank) in other.nonzero() {
            self.set(i, rank);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.registers.iter().all(|r| *r == 0)
    }

    /// The registers worth storing.
    pub fn nonzero(&self) -> impl Iterator<Item = (u16, u8)> + '_ {
        self.registers
            .iter()
            .enumerate()
            .filter(|(_, r)| **r > 0)
            .map(|(i, r)| (i as u16, *r))
    }

    /// Estimated number of distinct items (Ertl 2017, improved raw estimator).
    pub fn estimate(&self) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let m = HLL_REGISTERS as f64;
        let mut c = [0u32; (HLL_Q + 2) as usize];
        for r in &self.registers {
            c[usize::from(*r)] += 1;
        }
        let q = HLL_Q as usize;
        let mut z = m * tau(1.0 - f64::from(c[q + 1]) / m);
        for k in (1..=q).rev() {
            z = 0.5 * (z + f64::from(c[k]));
        }
        z += m * sigma(f64::from(c[0]) / m);
        let alpha_inf = 1.0 / (2.0 * std::f64::consts::LN_2);
        (alpha_inf * m * m / z).round() as u64
    }
}

fn sigma(mut x: f64) -> f64 {
    if x >= 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z == before {
            return z / 3.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Device;

    fn ev(name: &str, path: &str) -> Event {
        Event {
            event_id: "e1".into(),
            site: "s".into(),
            name: name.into(),
            ts: 0,
            received_at: 0,
            visitor_id: "v1".into(),
            session_id: Some("s1".into()),
            user_id: None,
            host: None,
            path: path.into(),
            title: None,
            referrer_host: Some("news.ycombinator.com".into()),
            utm_source: None,
            utm_medium: None,
            utm_campaign: None,
            utm_term: None,
            utm_content: None,
            screen: None,
            lang: None,
            timezone: None,
            country: None,
            device: Device::Mobile,
            browser: "Safari".into(),
            os: "iOS".into(),
            props: BTreeMap::new(),
            target: None,
        }
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

    #[test]
    fn cover_is_exact_and_coarse() {
        let day = 20_000 * DAY_MS;
        // 30 days plus ragged edges: one day run, hour and minute runs, two raw edges.
        let from = day + 5 * HOUR_MS + 7 * MINUTE_MS + 123;
        let to = day + 30 * DAY_MS + 3 * HOUR_MS + 2 * MINUTE_MS + 5;
        let c = cover(from, to);
        assert_eq!(c.raw.len(), 2);
        assert!(c.runs.len() <= 5);
        // Every millisecond is covered exactly once.
        let mut pieces: Vec<(i64, i64)> = c.raw.clone();
        pieces.extend(c.runs.iter().map(|r| (r.from, r.to)));
        pieces.sort();
        let mut at = from;
        for (a, b) in pieces {
            assert_eq!(a, at);
            at = b;
        }
        assert_eq!(at, to);
        for r in &c.runs {
            assert_eq!(r.from % r.res.ms(), 0);
            assert_eq!(r.to % r.res.ms(), 0);
        }
        assert_eq!(
            c.runs.iter().filter(|r| r.res == Res::Day).count(),
            1,
            "{c:?}"
        );
        // Short ranges are raw only; empty ranges are nothing.
        assert_eq!(cover(day + 1, day + 50).raw, vec![(day + 1, day + 50)]);
        assert_eq!(cover(day, day), Cover::default());
        // Negative times (before 1970) align too.
        let c = cover(-DAY_MS - 1, 0);
        assert!(c
            .runs
            .iter()
            .any(|r| r.res == Res::Day && r.from == -DAY_MS));
    }

    #[test]
    fn merge_runs_joins_touching_runs() {
        let m = |from, to| Run {
            res: Res::Minute,
            from,
            to,
        };
        let merged = merge_runs(vec![m(120_000, 180_000), m(0, 60_000), m(60_000, 120_000)]);
        assert_eq!(merged, vec![m(0, 180_000)]);
        assert_eq!(m(0, 180_000).buckets().count(), 3);
    }

    #[test]
    fn hll_error_is_within_two_percent() {
        // Exact for tiny sets; within 2 % on average across sizes, and never far off.
        let mut small = Hll::default();
        for i in 0..50 {
            small.insert(&format!("visitor-{i}"));
        }
        assert!(small.estimate().abs_diff(50) <= 1);
        let mut total_err = 0.0;
        let sizes = [1_000u64, 5_000, 20_000, 100_000, 300_000];
        for (round, n) in sizes.iter().enumerate() {
            let mut h = Hll::default();
            for i in 0..*n {
                h.insert(&format!("r{round}-visitor-{i}"));
            }
            let err = (h.estimate() as f64 - *n as f64).abs() / *n as f64;
            assert!(err < 0.05, "n={n} estimate={} err={err}", h.estimate());
            total_err += err;
        }
        assert!(total_err / (sizes.len() as f64) < 0.02);
    }

    #[test]
    fn hll_merge_equals_union() {
        let (mut a, mut b, mut both) = (Hll::default(), Hll::default(), Hll::default());
        for i in 0..3000 {
            let id = format!("v{i}");
            if i % 2 == 0 {
                a.insert(&id)
            } else {
                b.insert(&id)
            }
            both.insert(&id);
        }
        a.merge(&b);
        assert_eq!(a, both);
        // Damaged input is ignored.
        a.set(9999, 3);
        a.set(1, 200);
        assert_eq!(a, both);
    }
}
