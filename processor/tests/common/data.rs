//! A fixed synthetic data set and the answers to queries over it, computed here directly from
//! the raw events — independently of the rollup code under test.

use std::collections::{BTreeMap, BTreeSet};

use protocol::fixture::EventBuilder;
use protocol::{Device, Event};

pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// 2026-03-01T00:00:00Z.
pub fn base() -> i64 {
    protocol::time::parse_rfc3339("2026-03-01T00:00:00Z").expect("base time")
}

/// A small deterministic generator (no `rand` dependency in tests).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Lcg(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

pub fn event(id: String, site: &str, name: &str, ts: i64) -> Event {
    EventBuilder::new(site, name, ts)
        .id(id)
        .received_at(ts + 50)
        .host(site)
        .build()
}

/// `n` events over three days from [`base`] on two sites, with clusters right at UTC midnight
/// and at midnight in UTC+05:30 / UTC-08:00, and every dimension varied.
pub fn dataset(n: usize, seed: u64) -> Vec<Event> {
    let mut rng = Lcg::new(seed);
    let b = base();
    let edges = [
        b + DAY - 1,
        b + DAY,
        b + DAY + 1,
        b + 2 * DAY - 5 * HOUR - 30 * MINUTE, // local midnight at +05:30
        b + 2 * DAY - 5 * HOUR - 30 * MINUTE - 1,
        b + DAY + 8 * HOUR, // local midnight at -08:00
        b + DAY + 8 * HOUR - 1,
        b + 2 * DAY + 59 * MINUTE + 59_999,
    ];
    let names = [
        "page_view",
        "page_view",
        "page_view",
        "click",
        "session_start",
        "signup",
    ];
    let paths = ["/", "/pricing", "/docs/a.html", "/blog/$money", "/100%.txt"];
    let refs = ["news.ycombinator.com", "google.com", "t.co"];
    let utm = ["newsletter", "twitter", "hn"];
    let browsers = ["Firefox", "Chrome", "Safari"];
    let oses = ["Linux", "Windows 10", "iOS", "Mac OS X"];
    let countries = ["IN", "US", "DE"];
    let devices = [Device::Desktop, Device::Mobile, Device::Tablet];
    (0..n)
        .map(|i| {
            let ts = if i % 10 == 0 {
                edges[(i / 10) % edges.len()] + (rng.below(3) as i64) * 7
            } else {
                b + rng.below(3 * DAY as u64) as i64
            };
            let site = if i % 7 == 0 {
                "other.org"
            } else {
                "example.com"
            };
            let mut e = event(format!("evt-{seed}-{i:06}"), site, rng.pick(&names), ts);
            let v = rng.below(60);
            e.visitor_id = format!("visitor-{v}");
            e.session_id = (rng.below(5) != 0).then(|| format!("sess-{v}-{}", rng.below(3)));
            e.path = rng.pick(&paths).into();
            e.referrer_host = (rng.below(3) != 0).then(|| rng.pick(&refs).to_string());
            e.utm_source = (rng.below(4) == 0).then(|| rng.pick(&utm).to_string());
            e.browser = rng.pick(&browsers).into();
            e.os = rng.pick(&oses).into();
            e.country = (rng.below(5) != 0).then(|| rng.pick(&countries).to_string());
            e.device = devices[rng.below(3) as usize];
            e
        })
        .collect()
}

fn in_range<'a>(
    events: &'a [Event],
    site: &'a str,
    from: i64,
    to: i64,
) -> impl Iterator<Item = &'a Event> {
    events
        .iter()
        .filter(move |e| e.site == site && e.ts >= from && e.ts < to)
}

/// Expected summary numbers: `(pageviews, events, events_by_name, visitors, sessions)`.
pub struct Expected {
    pub pageviews: u64,
    pub events: u64,
    pub by_name: BTreeMap<String, u64>,
    pub visitors: u64,
    pub sessions: u64,
}

pub fn expected(events: &[Event], site: &str, from: i64, to: i64) -> Expected {
    let mut by_name = BTreeMap::new();
    let mut visitors = BTreeSet::new();
    let mut sessions = BTreeSet::new();
    for e in in_range(events, site, from, to) {
        *by_name.entry(e.name.clone()).or_insert(0) += 1;
        visitors.insert(e.visitor_id.clone());
        if let Some(s) = &e.session_id {
            sessions.insert(s.clone());
        }
    }
    Expected {
        pageviews: by_name.get("page_view").copied().unwrap_or(0),
        events: by_name.values().sum(),
        by_name,
        visitors: visitors.len() as u64,
        sessions: sessions.len() as u64,
    }
}

/// Expected breakdown counts for an API dimension name.
pub fn expected_breakdown(
    events: &[Event],
    site: &str,
    from: i64,
    to: i64,
    dimension: &str,
) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for e in in_range(events, site, from, to) {
        let pv = e.name == "page_view";
        let value = match dimension {
            "event" => Some(e.name.clone()),
            "page" if pv => Some(e.path.clone()),
            "entry" if e.name == "session_start" => Some(e.path.clone()),
            "referrer" if pv => Some(e.referrer_host.clone().unwrap_or("(direct)".into())),
            "utm_source" if pv => e.utm_source.clone(),
            "device" if pv => Some(e.device.as_str().to_string()),
            "browser" if pv => Some(e.browser.clone()),
            "os" if pv => Some(e.os.clone()),
            "country" if pv => Some(e.country.clone().unwrap_or("(unknown)".into())),
            _ => None,
        };
        if let Some(v) = value {
            *out.entry(v).or_insert(0) += 1;
        }
    }
    out
}

/// Expected time series: `(bucket start, pageviews, events)` for every bucket of `step`
/// aligned at UTC offset `offset_min`, from the one holding `from` to the one before `to`.
pub fn expected_series(
    events: &[Event],
    site: &str,
    from: i64,
    to: i64,
    step: i64,
    offset_min: i64,
) -> Vec<(i64, u64, u64)> {
    let off = offset_min * MINUTE;
    let mut start = (from + off).div_euclid(step) * step - off;
    let mut out = Vec::new();
    while start < to {
        let (a, b) = (start.max(from), (start + step).min(to));
        let e = expected(events, site, a, b);
        out.push((start, e.pageviews, e.events));
        start += step;
    }
    out
}

/// HyperLogLog tolerance: within 2 %, and never more than one off for small counts.
pub fn close(estimate: u64, exact: u64) -> bool {
    let tolerance = ((exact as f64) * 0.02).ceil().max(1.0) as u64;
    estimate.abs_diff(exact) <= tolerance
}
