//! Visits and filtered aggregates, defined once for every store. Pure: no IO, no clock.
//!
//! A **visit** is a tracker session (`sessionId`) of one site. Each store keeps one [`Visit`]
//! record per `(site, session)`, folded from the events that were *new* (never a duplicate)
//! with [`Visit::of_event`] and [`Visit::merge`]. Merging is order-independent for everything
//! the API shows: the earliest event gives the start and the visit's dimensions, the earliest
//! page view the entry page, the latest the exit page, so events arriving out of order give
//! the same record. Stores keep dimension values as whatever is cheapest for them (`T`):
//! dictionary ids in SQLite, strings in MongoDB.
//!
//! Filtered queries ([`Scope`] + [`Grouping`] → [`EventAgg`] / [`VisitAgg`]) are answered by
//! each store as it can do fastest (SQL over the fact table, an aggregation in MongoDB), but
//! what they mean is defined here: [`event_value`] (what an event's value of a field is),
//! [`counted`] (which events a breakdown counts), and the reference evaluation
//! [`event_stats_of`] / [`visit_stats_of`] over events and visits in memory, which the MongoDB
//! store uses and `tests/store_contract.rs` holds every store to.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use protocol::event::PropValue;
use protocol::stats::{Dimension, Field, Filter, Goal, DIRECT, UNKNOWN};
use protocol::Event;

use crate::rollup::{PAGE_VIEW, SESSION_START};

/// The dimensions a visit carries (from its earliest event), in this order in [`Visit::dims`].
pub const VISIT_DIMS: [Dimension; 10] = [
    Dimension::Referrer,
    Dimension::UtmSource,
    Dimension::UtmMedium,
    Dimension::UtmCampaign,
    Dimension::Country,
    Dimension::Region,
    Dimension::City,
    Dimension::Device,
    Dimension::Browser,
    Dimension::Os,
];

/// Where `d` sits in [`VISIT_DIMS`].
pub fn visit_dim_index(d: Dimension) -> Option<usize> {
    VISIT_DIMS.iter().position(|v| *v == d)
}

/// The visit's source (referrer and UTM): an event is filtered by its visit's, because only the
/// first page view of a visit has a referrer of its own.
pub fn is_source(d: Dimension) -> bool {
    matches!(
        d,
        Dimension::Referrer | Dimension::UtmSource | Dimension::UtmMedium | Dimension::UtmCampaign
    )
}

/// A property value as the API shows and filters it: `pro`, `42`, `true`.
pub fn prop_text(v: &PropValue) -> Cow<'_, str> {
    match v {
        PropValue::String(s) => Cow::Borrowed(s.as_str()),
        PropValue::Number(n) => Cow::Owned(n.to_string()),
        PropValue::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
    }
}

/// An event's own value of a dimension, as breakdowns label it (`(direct)`, `(unknown)`);
/// `None` when it has none (no UTM, no geoip region). Entry and exit pages are not an event's
/// (see [`Visit`]); for them this is `None`.
pub fn event_dim(e: &Event, d: Dimension) -> Option<&str> {
    match d {
        Dimension::Event => Some(&e.name),
        Dimension::Page => Some(&e.path),
        Dimension::Entry => (e.name == SESSION_START).then_some(e.path.as_str()),
        Dimension::Referrer => Some(e.referrer_host.as_deref().unwrap_or(DIRECT)),
        Dimension::UtmSource => e.utm_source.as_deref(),
        Dimension::UtmMedium => e.utm_medium.as_deref(),
        Dimension::UtmCampaign => e.utm_campaign.as_deref(),
        Dimension::Country => Some(e.country.as_deref().unwrap_or(UNKNOWN)),
        Dimension::Region => e.region.as_deref(),
        Dimension::City => e.city.as_deref(),
        Dimension::Device => Some(e.device.as_str()),
        Dimension::Browser => Some(&e.browser),
        Dimension::Os => Some(&e.os),
        Dimension::EntryPage | Dimension::ExitPage => None,
    }
}

/// An event's value of a field for filters and breakdowns, with its visit where the field is
/// the visit's (entry and exit page, source).
pub fn event_value<'a>(
    e: &'a Event,
    visit: Option<&'a Visit<String>>,
    field: &Field,
) -> Option<Cow<'a, str>> {
    match field {
        Field::Prop(name) => e.props.get(name).map(prop_text),
        Field::Dim(Dimension::EntryPage) => visit
            .and_then(|v| v.entry.as_ref())
            .map(|p| Cow::Borrowed(p.1.as_str())),
        Field::Dim(Dimension::ExitPage) => visit
            .and_then(|v| v.exit.as_ref())
            .map(|p| Cow::Borrowed(p.1.as_str())),
        Field::Dim(d) if is_source(*d) => match visit {
            Some(v) => v.dim(*d).map(|s| Cow::Borrowed(s.as_str())),
            None => event_dim(e, *d).map(Cow::Borrowed),
        },
        Field::Dim(d) => event_dim(e, *d).map(Cow::Borrowed),
    }
}

/// Which events a breakdown by `field` counts (see `docs/API.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Every event (`event`, `prop.NAME` — those carrying the property).
    Events,
    /// Page views (page, source, location and device dimensions).
    PageViews,
    /// `session_start` events (`entry`, kept for older clients).
    SessionStarts,
    /// Visits (`entry_page`, `exit_page`): answered from the visits, not the events.
    Visits,
}

pub fn counted(field: &Field) -> Counted {
    match field {
        Field::Prop(_) | Field::Dim(Dimension::Event) => Counted::Events,
        Field::Dim(Dimension::Entry) => Counted::SessionStarts,
        Field::Dim(Dimension::EntryPage | Dimension::ExitPage) => Counted::Visits,
        Field::Dim(_) => Counted::PageViews,
    }
}

/// Whether a filter tests the visit (kept whole) rather than each event.
pub fn is_visit_filter(f: &Filter) -> bool {
    matches!(&f.field, Field::Dim(d) if d.is_visit_level())
}

/// One visit: see the module docs. `T` is how the store holds strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit<T> {
    /// Earliest and latest event time, epoch ms.
    pub start: i64,
    pub end: i64,
    pub pageviews: u64,
    /// Earliest page view: `(ts, path)`.
    pub entry: Option<(i64, T)>,
    /// Latest page view: `(ts, path)`.
    pub exit: Option<(i64, T)>,
    /// [`VISIT_DIMS`] of the earliest event.
    pub dims: [Option<T>; 10],
}

impl<T: Clone> Visit<T> {
    /// The visit as one event alone makes it.
    pub fn of_event(e: &Event, mut intern: impl FnMut(&str) -> T) -> Visit<T> {
        let page = (e.name == PAGE_VIEW).then(|| (e.ts, intern(&e.path)));
        Visit {
            start: e.ts,
            end: e.ts,
            pageviews: u64::from(page.is_some()),
            entry: page.clone(),
            exit: page,
            dims: VISIT_DIMS.map(|d| event_dim(e, d).map(&mut intern)),
        }
    }

    /// Folds `other` (more events of the same visit) in. Ties keep what was there first.
    pub fn merge(&mut self, other: Visit<T>) {
        if other.start < self.start {
            self.start = other.start;
            self.dims = other.dims;
        }
        self.end = self.end.max(other.end);
        self.pageviews += other.pageviews;
        if let Some(entry) = other.entry {
            if self.entry.as_ref().is_none_or(|(ts, _)| entry.0 < *ts) {
                self.entry = Some(entry);
            }
        }
        if let Some(exit) = other.exit {
            if self.exit.as_ref().is_none_or(|(ts, _)| exit.0 > *ts) {
                self.exit = Some(exit);
            }
        }
    }

    pub fn dim(&self, d: Dimension) -> Option<&T> {
        visit_dim_index(d).and_then(|i| self.dims[i].as_ref())
    }

    /// Only sessions with a page view are visits (see `docs/API.md`).
    pub fn is_visit(&self) -> bool {
        self.pageviews > 0
    }
}

/// Folds the new events of a write into one [`Visit`] per `(site, session)` (events without a
/// session id belong to no visit), for a store to merge into its records.
pub fn fold<'a, T: Clone>(
    events: impl IntoIterator<Item = &'a Event>,
    mut intern: impl FnMut(&str) -> T,
) -> BTreeMap<(&'a str, &'a str), Visit<T>> {
    let mut out: BTreeMap<(&str, &str), Visit<T>> = BTreeMap::new();
    for e in events {
        let Some(session) = e.session_id.as_deref() else {
            continue;
        };
        let v = Visit::of_event(e, &mut intern);
        match out.get_mut(&(e.site.as_str(), session)) {
            Some(existing) => existing.merge(v),
            None => {
                out.insert((e.site.as_str(), session), v);
            }
        }
    }
    out
}

/// What a filtered query covers: one site, `[from, to)`, AND-ed filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub site: String,
    pub from: i64,
    pub to: i64,
    pub filters: Vec<Filter>,
}

impl Scope {
    pub fn visit_filters(&self) -> impl Iterator<Item = &Filter> {
        self.filters.iter().filter(|f| is_visit_filter(f))
    }

    pub fn event_filters(&self) -> impl Iterator<Item = &Filter> {
        self.filters.iter().filter(|f| !is_visit_filter(f))
    }
}

/// How an aggregate is split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grouping {
    Total,
    /// Buckets of `step` ms aligned to `origin`: key `(ts − origin) / step`.
    Step {
        origin: i64,
        step: i64,
    },
    /// By a field's value, counting what [`counted`] says. Breakdowns show counts only, so
    /// a field grouping leaves `visitors` and `sessions` at 0 (no store spends time on them).
    Field(Field),
    /// By goal (index into the list): an event counts for every goal it matches.
    Goals(Vec<Goal>),
    /// By the name of each custom property an event carries (an event counts once for each of
    /// its property names): which `prop.NAME` breakdowns the range has. Events only, like a
    /// field grouping; visits have no properties.
    PropNames,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupKey {
    Total,
    Bucket(i64),
    Value(String),
    Goal(usize),
}

/// Events of one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventAgg {
    /// Counted events (see [`counted`] for field groupings; every event otherwise).
    pub events: u64,
    pub pageviews: u64,
    /// Distinct visitor ids / session ids (exact; 0 under a field grouping).
    pub visitors: u64,
    pub sessions: u64,
}

/// Visits of one group (those that started in the range).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VisitAgg {
    pub visits: u64,
    /// Visits with exactly one page view.
    pub bounces: u64,
    /// Sum of `end − start`, ms.
    pub duration_ms: u64,
    pub pageviews: u64,
}

impl VisitAgg {
    pub fn add(&mut self, v: &Visit<impl Clone>) {
        self.visits += 1;
        self.bounces += u64::from(v.pageviews == 1);
        self.duration_ms += (v.end - v.start).max(0) as u64;
        self.pageviews += v.pageviews;
    }

    /// `bounceRate`: % with one page view, one decimal.
    pub fn bounce_rate(&self) -> f64 {
        ratio(self.bounces as f64 * 100.0, self.visits, 1)
    }

    /// `visitDuration`: mean seconds, rounded.
    pub fn visit_duration(&self) -> u64 {
        ratio(self.duration_ms as f64 / 1000.0, self.visits, 0) as u64
    }

    /// `viewsPerVisit`: two decimals.
    pub fn views_per_visit(&self) -> f64 {
        ratio(self.pageviews as f64, self.visits, 2)
    }
}

fn ratio(num: f64, den: u64, decimals: i32) -> f64 {
    if den == 0 {
        0.0
    } else {
        protocol::stats::round_to(num / den as f64, decimals)
    }
}

fn passes(e: &Event, visit: Option<&Visit<String>>, filters: &[Filter]) -> bool {
    filters
        .iter()
        .all(|f| f.accepts(event_value(e, visit, &f.field).as_deref()))
}

fn visit_passes(v: &Visit<String>, filters: &[Filter]) -> bool {
    filters.iter().filter(|f| is_visit_filter(f)).all(|f| {
        let value = match &f.field {
            Field::Dim(Dimension::EntryPage) => v.entry.as_ref().map(|p| p.1.as_str()),
            Field::Dim(Dimension::ExitPage) => v.exit.as_ref().map(|p| p.1.as_str()),
            Field::Dim(d) => v.dim(*d).map(String::as_str),
            Field::Prop(_) => None,
        };
        f.accepts(value)
    })
}

/// Reference evaluation of an event aggregate: `events` are the site's events (any range;
/// those outside the scope are skipped), `visits` its visit records by session id.
pub fn event_stats_of(
    events: &[Event],
    visits: &HashMap<String, Visit<String>>,
    scope: &Scope,
    grouping: &Grouping,
) -> Vec<(GroupKey, EventAgg)> {
    #[derive(Default)]
    struct Acc<'a> {
        agg: EventAgg,
        visitors: HashSet<&'a str>,
        sessions: HashSet<&'a str>,
    }
    let mut groups: BTreeMap<GroupKey, Acc<'_>> = BTreeMap::new();
    for e in events {
        if e.site != scope.site || e.ts < scope.from || e.ts >= scope.to {
            continue;
        }
        let visit = e.session_id.as_ref().and_then(|s| visits.get(s));
        if !passes(e, visit, &scope.filters) {
            continue;
        }
        let keys: Vec<GroupKey> = match grouping {
            Grouping::Total => vec![GroupKey::Total],
            Grouping::Step { origin, step } => {
                vec![GroupKey::Bucket((e.ts - origin).div_euclid(*step))]
            }
            Grouping::Field(field) => {
                let wanted = match counted(field) {
                    Counted::Events => true,
                    Counted::PageViews => e.name == PAGE_VIEW,
                    Counted::SessionStarts => e.name == SESSION_START,
                    Counted::Visits => false,
                };
                match event_value(e, visit, field) {
                    Some(v) if wanted => vec![GroupKey::Value(v.into_owned())],
                    _ => vec![],
                }
            }
            Grouping::Goals(goals) => goals
                .iter()
                .enumerate()
                .filter(|(_, g)| g.matches(&e.name, &e.path))
                .map(|(i, _)| GroupKey::Goal(i))
                .collect(),
            Grouping::PropNames => e.props.keys().cloned().map(GroupKey::Value).collect(),
        };
        for key in keys {
            let acc = groups.entry(key).or_default();
            acc.agg.events += 1;
            acc.agg.pageviews += u64::from(e.name == PAGE_VIEW);
            acc.visitors.insert(&e.visitor_id);
            if let Some(s) = &e.session_id {
                acc.sessions.insert(s);
            }
        }
    }
    let distinct = !matches!(grouping, Grouping::Field(_) | Grouping::PropNames);
    groups
        .into_iter()
        .map(|(k, mut acc)| {
            if distinct {
                acc.agg.visitors = acc.visitors.len() as u64;
                acc.agg.sessions = acc.sessions.len() as u64;
            }
            (k, acc.agg)
        })
        .collect()
}

/// Reference evaluation of a visit aggregate: the visits that started in the scope's range,
/// pass its visit-level filters and — when it has event-level filters — have at least one
/// event in the range passing those (`events` as in [`event_stats_of`]).
pub fn visit_stats_of(
    events: &[Event],
    visits: &HashMap<String, Visit<String>>,
    scope: &Scope,
    grouping: &Grouping,
) -> Vec<(GroupKey, VisitAgg)> {
    let event_filters: Vec<Filter> = scope.event_filters().cloned().collect();
    let matching: Option<HashSet<&str>> = (!event_filters.is_empty()).then(|| {
        events
            .iter()
            .filter(|e| e.site == scope.site && e.ts >= scope.from && e.ts < scope.to)
            .filter(|e| passes(e, None, &event_filters))
            .filter_map(|e| e.session_id.as_deref())
            .collect()
    });
    let mut groups: BTreeMap<GroupKey, VisitAgg> = BTreeMap::new();
    for (session, v) in visits {
        if !v.is_visit() || v.start < scope.from || v.start >= scope.to {
            continue;
        }
        if !visit_passes(v, &scope.filters) {
            continue;
        }
        if matching
            .as_ref()
            .is_some_and(|m| !m.contains(session.as_str()))
        {
            continue;
        }
        let key = match grouping {
            Grouping::Total => GroupKey::Total,
            Grouping::Step { origin, step } => {
                GroupKey::Bucket((v.start - origin).div_euclid(*step))
            }
            Grouping::Field(Field::Dim(Dimension::EntryPage)) => match &v.entry {
                Some((_, p)) => GroupKey::Value(p.clone()),
                None => continue,
            },
            Grouping::Field(Field::Dim(Dimension::ExitPage)) => match &v.exit {
                Some((_, p)) => GroupKey::Value(p.clone()),
                None => continue,
            },
            Grouping::Field(Field::Dim(d)) => match v.dim(*d) {
                Some(value) => GroupKey::Value(value.clone()),
                None => continue,
            },
            Grouping::Field(Field::Prop(_)) | Grouping::Goals(_) | Grouping::PropNames => continue,
        };
        groups.entry(key).or_default().add(v);
    }
    groups.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use protocol::fixture::EventBuilder;

    use super::*;

    fn ev(name: &str, ts: i64, path: &str) -> Event {
        EventBuilder::new("s", name, ts)
            .session("a")
            .visitor("v1")
            .path(path)
            .build()
    }

    #[test]
    fn merge_is_order_independent() {
        let events = [
            ev("session_start", 1_000, "/"),
            ev("page_view", 1_000, "/"),
            ev("page_view", 20_000, "/pricing"),
            ev("session_end", 31_000, "/pricing"),
        ];
        let forward = fold(events.iter(), str::to_string);
        let mut backward: Option<Visit<String>> = None;
        for e in events.iter().rev() {
            let v = Visit::of_event(e, str::to_string);
            match backward.as_mut() {
                Some(b) => b.merge(v),
                None => backward = Some(v),
            }
        }
        let v = &forward[&("s", "a")];
        assert_eq!(Some(v), backward.as_ref());
        assert_eq!((v.start, v.end, v.pageviews), (1_000, 31_000, 2));
        assert_eq!(v.entry, Some((1_000, "/".to_string())));
        assert_eq!(v.exit, Some((20_000, "/pricing".to_string())));
    }

    #[test]
    fn visit_metrics_round_as_documented() {
        let mut agg = VisitAgg::default();
        let one = Visit::of_event(&ev("page_view", 0, "/"), str::to_string);
        let mut two = one.clone();
        two.merge(Visit::of_event(
            &ev("page_view", 30_000, "/b"),
            str::to_string,
        ));
        let three = {
            let mut t = two.clone();
            t.merge(Visit::of_event(
                &ev("page_view", 1_000, "/c"),
                str::to_string,
            ));
            t
        };
        agg.add(&one);
        agg.add(&two);
        agg.add(&three);
        assert_eq!(agg.bounce_rate(), 33.3);
        assert_eq!(agg.visit_duration(), 20);
        assert_eq!(agg.views_per_visit(), 2.0);
        assert_eq!(VisitAgg::default().bounce_rate(), 0.0);
    }
}
