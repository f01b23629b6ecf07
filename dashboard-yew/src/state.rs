//! The dashboard's whole state and the only way it changes: [`Action`]s applied by
//! [`State::apply`] (wrapped as Yew's `Reducible`). No `web_sys`, no clock, no randomness:
//! whatever the browser knows (time, time zone, a network answer) arrives inside an action,
//! so every transition is a unit test on the host.

use std::collections::BTreeMap;
use std::rc::Rc;

use protocol::live::{FeedEvent, LiveMetrics, ServerMessage, FEED_LEN, LIVE_PROTOCOL_VERSION};
use yew::Reducible;

use protocol::stats::{
    Access, Compare, Field, Filter, FilterOp, GoalStats, Interval, Role, ShareLink, SiteInfo,
    MAX_FILTERS,
};

use crate::api::{self, ApiError, Breakdown, Dimension, RegisteredSite, Span, Summary, Timeseries};
use crate::metric::Metric;
use crate::shape::{bucket_start, parse_date, DAY_MS, OFFLINE_AFTER_ATTEMPTS};

/// Used until the server reports a site: what the collector files events without one under.
pub const DEFAULT_SITE: &str = "default";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    #[default]
    Live,
    History,
    /// The site registry (admins only).
    Sites,
}

/// The live connection as the indicator shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Conn {
    /// Not logged in, or no site chosen yet.
    #[default]
    Idle,
    /// First attempt in progress.
    Connecting,
    /// Open, and the snapshot arrived.
    Live,
    /// Lost; retry `attempt` is due in `retry_ms`.
    Reconnecting { attempt: u32, retry_ms: u32 },
    /// Still retrying, but it has been failing for a while.
    Offline { attempt: u32, retry_ms: u32 },
    /// The server speaks a live protocol version this build does not know: reload.
    Incompatible { version: u32 },
}

impl Conn {
    /// The state after failed attempt `attempt` with the next try in `retry_ms`.
    pub fn after_failure(attempt: u32, retry_ms: u32) -> Conn {
        if attempt >= OFFLINE_AFTER_ATTEMPTS {
            Conn::Offline { attempt, retry_ms }
        } else {
            Conn::Reconnecting { attempt, retry_ms }
        }
    }

    /// Stable name for CSS and tests (`data-status`).
    pub fn key(self) -> &'static str {
        match self {
            Conn::Idle => "idle",
            Conn::Connecting => "connecting",
            Conn::Live => "live",
            Conn::Reconnecting { .. } => "reconnecting",
            Conn::Offline { .. } => "offline",
            Conn::Incompatible { .. } => "incompatible",
        }
    }
}

/// A value fetched from the server.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Load<T> {
    #[default]
    Idle,
    Loading,
    Ready(T),
    /// The endpoint answered 404: this server does not have it (yet).
    Unavailable,
    Failed(String),
}

impl<T> Load<T> {
    pub fn from_result(r: Result<T, ApiError>) -> Self {
        match r {
            Ok(v) => Load::Ready(v),
            Err(ApiError::NotFound) => Load::Unavailable,
            Err(e) => Load::Failed(e.to_string()),
        }
    }

    pub fn ready(&self) -> Option<&T> {
        match self {
            Load::Ready(v) => Some(v),
            _ => None,
        }
    }
}

/// The history view's range.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Range {
    #[default]
    Today,
    Last7Days,
    Last30Days,
    /// Whole local days, `YYYY-MM-DD`, both included.
    Custom {
        from: String,
        to: String,
    },
}

impl Range {
    /// The range in epoch ms at `now_ms` (`tz_offset_min` east of UTC):
    /// today = since local midnight; 7/30 days = rolling; custom = from the first day's
    /// midnight to the end of the last day (or now, if that is earlier). `None` for an
    /// unreadable or reversed custom range.
    pub fn span(&self, now_ms: i64, tz_offset_min: i32) -> Option<Span> {
        let span = match self {
            Range::Today => {
                let midnight = bucket_start(now_ms, Interval::Day, tz_offset_min);
                Span {
                    from: midnight,
                    to: now_ms.max(midnight + 1),
                }
            }
            Range::Last7Days => Span {
                from: now_ms - 7 * DAY_MS,
                to: now_ms,
            },
            Range::Last30Days => Span {
                from: now_ms - 30 * DAY_MS,
                to: now_ms,
            },
            Range::Custom { from, to } => {
                let from = parse_date(from, tz_offset_min)?;
                let end = parse_date(to, tz_offset_min)? + DAY_MS;
                Span {
                    from,
                    to: end.min(now_ms.max(from + 1)),
                }
            }
        };
        (span.from < span.to).then_some(span)
    }

    pub fn label(&self) -> &'static str {
        match self {
            Range::Today => "Today",
            Range::Last7Days => "7 days",
            Range::Last30Days => "30 days",
            Range::Custom { .. } => "Custom",
        }
    }
}

/// Everything the history view shows for one (site, range, filters, comparison) request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct History {
    /// Which request these answers belong to; answers for an older one are dropped.
    pub request: u32,
    pub span: Option<Span>,
    /// Answers of `request` still to come. While it is above 0 the view is busy and shows
    /// the previous answers (no flashing "Loading…" on every filter click).
    pub outstanding: u32,
    pub summary: Load<Summary>,
    pub series: Load<Timeseries>,
    pub breakdowns: BTreeMap<Dimension, Load<Breakdown>>,
    /// The breakdown by the chosen custom property ([`State::prop`]).
    pub prop: Load<Breakdown>,
    pub goals: Load<GoalStats>,
}

impl History {
    /// Counts an answer of `request` in; `false` if it is for an older request (drop it).
    fn answered(&mut self, request: u32) -> bool {
        if self.request != request {
            return false;
        }
        self.outstanding = self.outstanding.saturating_sub(1);
        true
    }
}

/// An edit that goes to the server (a goal added or deleted, a share link created or
/// revoked): whether one is under way and why the last one failed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Editing {
    pub busy: bool,
    pub error: Option<String>,
}

impl Editing {
    fn done(&mut self, r: Result<(), ApiError>) -> bool {
        self.busy = false;
        self.error = r.as_ref().err().map(ToString::to_string);
        r.is_ok()
    }
}

/// The share-link manager (admins only).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Shares {
    pub open: bool,
    pub links: Load<Vec<ShareLink>>,
    /// Bumped by every successful change, so the list is asked again.
    pub rev: u32,
    pub edit: Editing,
    /// The link whose URL was just copied (its id).
    pub copied: Option<String>,
}

/// The site registry as the Sites view shows it (admins only).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Registry {
    /// `Unavailable` when the server has no registry or refuses this credential: the view is
    /// then not offered.
    pub sites: Load<Vec<RegisteredSite>>,
    /// Bumped by every successful change, so the list is read again.
    pub rev: u32,
    pub edit: Editing,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Login {
    /// A token is being checked: the button is disabled.
    pub checking: bool,
    /// Why the last attempt (or the session) ended, shown on the login form.
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct State {
    /// The credential once the server accepted it: the admin token or a share-link token.
    pub token: Option<String>,
    /// What `token` may do (`GET /api/access`); `None` until accepted.
    pub role: Option<Role>,
    pub login: Login,
    pub sites: Vec<SiteInfo>,
    /// The site everything shows; `None` until logged in (or from the URL).
    pub site: Option<String>,
    pub view: View,
    pub conn: Conn,
    /// The latest live state (replaced whole by every snapshot and tick).
    pub live: Option<LiveMetrics>,
    /// Server time of `live`.
    pub live_at: i64,
    /// Feed events, newest first, at most [`FEED_LEN`].
    pub feed: Vec<FeedEvent>,
    pub range: Range,
    /// Active filters, at most one per field, in the order they were set.
    pub filters: Vec<Filter>,
    pub compare: Option<Compare>,
    /// What the history chart draws.
    pub metric: Metric,
    /// The custom property broken down in its panel.
    pub prop: Option<String>,
    pub history: History,
    /// Bumped to ask the history again: a goal changed, or the user asked for fresh numbers.
    pub history_rev: u32,
    pub goal_edit: Editing,
    pub shares: Shares,
    pub registry: Registry,
    /// A message about something the user started that failed (an export).
    pub notice: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    LoginStarted,
    /// The server accepted `token` as `access`; `sites` is its site list (empty for a share
    /// link, which reads one site only).
    LoggedIn {
        token: String,
        access: Access,
        sites: Vec<SiteInfo>,
    },
    LoginFailed(String),
    /// Log out (by the user: no message; because the server refused the token: a message).
    LoggedOut(Option<String>),
    SitesLoaded(Vec<SiteInfo>),
    SelectSite(String),
    ShowView(View),
    Conn(Conn),
    /// A message of the live feed (boxed: it is far bigger than every other action).
    Live(Box<ServerMessage>),
    SetRange(Range),
    /// Filter by a row: replaces a filter on the same field.
    AddFilter(Filter),
    /// A row of the live view: filter the history of today by it.
    FilterFromLive(Filter),
    RemoveFilter(Field),
    /// "is" ↔ "is not".
    InvertFilter(Field),
    ClearFilters,
    SetCompare(Option<Compare>),
    SetMetric(Metric),
    SetProp(Option<String>),
    /// Ask the history again (new events arrived since).
    Refresh,
    /// A history request for `span` starts; its `parts` answers carry `request`.
    HistoryRequested {
        request: u32,
        span: Option<Span>,
        parts: u32,
    },
    Summary(u32, Result<Summary, ApiError>),
    Series(u32, Result<Timeseries, ApiError>),
    Breakdown(u32, Dimension, Result<Breakdown, ApiError>),
    PropBreakdown(u32, Result<Breakdown, ApiError>),
    Goals(u32, Result<GoalStats, ApiError>),
    GoalEditStarted,
    GoalEdited(Result<(), ApiError>),
    OpenShares(bool),
    SharesLoaded(Result<Vec<ShareLink>, ApiError>),
    ShareEditStarted,
    ShareEdited(Result<(), ApiError>),
    /// The URL of share link `id` is on the clipboard (`None`: copying failed).
    Copied(Option<String>),
    Notice(Option<String>),
    /// The site registry as the server listed it.
    RegistryLoaded(Result<Vec<RegisteredSite>, ApiError>),
    /// A site is being added or removed.
    RegistryEditStarted,
    RegistryEdited(Result<(), ApiError>),
}

impl State {
    /// A fresh state that will check a token found in session storage (or a share link's),
    /// showing the view a bookmarked URL describes.
    pub fn restoring(token: Option<String>, url: UrlState) -> Self {
        State {
            login: Login {
                checking: token.is_some(),
                message: None,
            },
            site: url.site,
            view: url.view,
            range: url.range,
            filters: url.filters,
            compare: url.compare,
            metric: url.metric,
            prop: url.prop,
            ..State::default()
        }
    }

    /// What the URL shows of this state.
    pub fn url_state(&self) -> UrlState {
        UrlState {
            site: self.site.clone(),
            view: self.view,
            range: self.range.clone(),
            filters: self.filters.clone(),
            compare: self.compare,
            metric: self.metric,
            prop: self.prop.clone(),
        }
    }

    /// Signed in with the admin token (goals, share links and raw exports are managed).
    pub fn is_admin(&self) -> bool {
        self.role == Some(Role::Admin)
    }

    /// Opened through a share link: one site, read-only.
    pub fn is_shared(&self) -> bool {
        self.role == Some(Role::Share)
    }

    pub fn apply(&mut self, action: Action) {
        match action {
            Action::LoginStarted => {
                self.login = Login {
                    checking: true,
                    message: None,
                }
            }
            Action::LoggedIn {
                token,
                access,
                sites,
            } => {
                self.token = Some(token);
                self.role = Some(access.role);
                self.login = Login::default();
                match (access.role, access.site) {
                    (Role::Share, Some(site)) => {
                        if self.site.as_deref() != Some(site.as_str()) {
                            self.site = Some(site);
                            self.clear_site_data();
                        }
                        self.sites = Vec::new();
                    }
                    _ => self.set_sites(sites),
                }
            }
            Action::LoginFailed(message) => {
                self.login = Login {
                    checking: false,
                    message: Some(message),
                }
            }
            Action::LoggedOut(message) => {
                *self = State {
                    login: Login {
                        checking: false,
                        message,
                    },
                    ..State::default()
                }
            }
            Action::SitesLoaded(sites) => {
                if !self.is_shared() {
                    self.set_sites(sites)
                }
            }
            Action::SelectSite(site) => {
                if self.site.as_deref() != Some(site.as_str()) && !self.is_shared() {
                    self.site = Some(site);
                    self.clear_site_data();
                    // Filters name another site's pages and properties.
                    self.filters.clear();
                    self.prop = None;
                }
            }
            Action::ShowView(view) => self.view = view,
            Action::Conn(conn) => self.conn = conn,
            Action::Live(msg) => self.apply_live(*msg),
            Action::SetRange(range) => self.range = range,
            Action::AddFilter(f) => self.add_filter(f),
            Action::FilterFromLive(f) => {
                self.add_filter(f);
                self.view = View::History;
                self.range = Range::Today;
            }
            Action::RemoveFilter(field) => self.filters.retain(|f| f.field != field),
            Action::InvertFilter(field) => {
                for f in self.filters.iter_mut().filter(|f| f.field == field) {
                    f.op = match f.op {
                        FilterOp::Is => FilterOp::IsNot,
                        FilterOp::IsNot => FilterOp::Is,
                    };
                }
            }
            Action::ClearFilters => self.filters.clear(),
            Action::SetCompare(c) => self.compare = c,
            Action::SetMetric(m) => self.metric = m,
            Action::SetProp(p) => {
                self.prop = p.map(|p| p.trim().to_string()).filter(|p| !p.is_empty())
            }
            Action::Refresh => self.history_rev = self.history_rev.wrapping_add(1),
            Action::HistoryRequested {
                request,
                span,
                parts,
            } => {
                let h = &mut self.history;
                h.request = request;
                h.span = span;
                h.outstanding = if span.is_some() { parts } else { 0 };
                let will_load = span.is_some();
                refresh(&mut h.summary, will_load);
                refresh(&mut h.series, will_load);
                refresh(&mut h.goals, will_load);
                refresh(&mut h.prop, will_load && self.prop.is_some());
                for d in api::TABLES {
                    refresh(h.breakdowns.entry(d).or_default(), will_load);
                }
            }
            Action::Summary(request, r) => {
                if self.history.answered(request) {
                    self.history.summary = Load::from_result(r);
                }
            }
            Action::Series(request, r) => {
                if self.history.answered(request) {
                    self.history.series = Load::from_result(r);
                }
            }
            Action::Breakdown(request, dim, r) => {
                if self.history.answered(request) {
                    self.history.breakdowns.insert(dim, Load::from_result(r));
                }
            }
            Action::PropBreakdown(request, r) => {
                if self.history.answered(request) {
                    self.history.prop = Load::from_result(r);
                }
            }
            Action::Goals(request, r) => {
                if self.history.answered(request) {
                    self.history.goals = Load::from_result(r);
                }
            }
            Action::GoalEditStarted => self.goal_edit.busy = true,
            Action::GoalEdited(r) => {
                if self.goal_edit.done(r) {
                    self.history_rev = self.history_rev.wrapping_add(1);
                }
            }
            Action::OpenShares(open) => {
                self.shares.open = open;
                self.shares.copied = None;
            }
            Action::SharesLoaded(r) => self.shares.links = Load::from_result(r),
            Action::ShareEditStarted => self.shares.edit.busy = true,
            Action::ShareEdited(r) => {
                if self.shares.edit.done(r) {
                    self.shares.rev = self.shares.rev.wrapping_add(1);
                }
            }
            Action::Copied(id) => self.shares.copied = id,
            Action::Notice(n) => self.notice = n,
            Action::RegistryLoaded(r) => {
                self.registry.sites = match r {
                    // Not a credential that manages sites: no Sites view.
                    Err(ApiError::Unauthorized | ApiError::Forbidden) => Load::Unavailable,
                    r => Load::from_result(r),
                };
                if !self.can_manage_sites() && self.view == View::Sites {
                    self.view = View::Live;
                }
            }
            Action::RegistryEditStarted => self.registry.edit.busy = true,
            Action::RegistryEdited(r) => {
                // 404 on a removal: the site was already gone (another tab, the CLI); reading
                // the list again shows what is there.
                let r = r.or_else(|e| {
                    if e == ApiError::NotFound {
                        Ok(())
                    } else {
                        Err(e)
                    }
                });
                if self.registry.edit.done(r) {
                    self.registry.rev = self.registry.rev.wrapping_add(1);
                }
            }
        }
    }

    fn add_filter(&mut self, f: Filter) {
        if let Some(same) = self.filters.iter_mut().find(|g| g.field == f.field) {
            *same = f;
        } else if self.filters.len() < MAX_FILTERS {
            self.filters.push(f);
        }
    }

    /// Is the Sites view offered? To the admin, unless the server has no registry.
    pub fn can_manage_sites(&self) -> bool {
        self.is_admin() && !matches!(self.registry.sites, Load::Unavailable)
    }

    /// Keeps the chosen site if it still exists; otherwise the busiest one; `default` when
    /// there is none yet (its view then explains how to install the tracker).
    fn set_sites(&mut self, mut sites: Vec<SiteInfo>) {
        sites.sort_by(|a, b| b.events.cmp(&a.events).then_with(|| a.site.cmp(&b.site)));
        let keep = self
            .site
            .as_ref()
            .is_some_and(|s| s != DEFAULT_SITE || sites.is_empty());
        if !keep {
            let next = sites
                .first()
                .map_or_else(|| DEFAULT_SITE.to_string(), |s| s.site.clone());
            if self.site.as_deref() != Some(next.as_str()) {
                self.site = Some(next);
                self.clear_site_data();
            }
        }
        self.sites = sites;
    }

    fn clear_site_data(&mut self) {
        self.live = None;
        self.live_at = 0;
        self.feed.clear();
        self.history = History::default();
        self.shares = Shares {
            open: self.shares.open,
            ..Shares::default()
        };
        self.goal_edit = Editing::default();
    }

    fn apply_live(&mut self, msg: ServerMessage) {
        let (update, snapshot) = match msg {
            ServerMessage::Snapshot(u) => (u, true),
            ServerMessage::Tick(u) => (u, false),
            // The hook sees the close that follows and schedules the reconnect.
            ServerMessage::Bye { .. } => return,
        };
        if update.v != LIVE_PROTOCOL_VERSION {
            self.conn = Conn::Incompatible { version: update.v };
            return;
        }
        // A late message for a site the user has left is dropped.
        if self.site.as_deref() != Some(update.site.as_str()) {
            return;
        }
        merge_feed(&mut self.feed, update.feed, snapshot);
        self.live = Some(update.metrics);
        self.live_at = update.at;
        if snapshot {
            self.conn = Conn::Live;
        }
    }

    /// Nothing has ever been recorded for this site: show how to install the tracker.
    pub fn site_is_empty(&self) -> bool {
        // A share link cannot list sites; its site was shared because it has data.
        if self.is_shared() {
            return false;
        }
        let known = self
            .site
            .as_ref()
            .and_then(|s| self.sites.iter().find(|i| &i.site == s));
        let live_events = self.live.as_ref().map_or(0, |m| m.today.events);
        known.is_none_or(|i| i.events == 0) && live_events == 0 && self.feed.is_empty()
    }
}

/// Before a new request: a shown answer stays (until the new one replaces it); anything else
/// becomes `Loading` if the request will be answered, `Idle` if not.
fn refresh<T>(load: &mut Load<T>, will_load: bool) {
    if !will_load {
        *load = Load::Idle;
    } else if !matches!(load, Load::Ready(_)) {
        *load = Load::Loading;
    }
}

/// Adds feed events (oldest first, as the server sends them) to `feed` (newest first). A
/// snapshot replaces the feed; a tick adds only events newer than the newest one held, so a
/// duplicate delivery never shows an event twice. Keeps at most [`FEED_LEN`].
pub fn merge_feed(feed: &mut Vec<FeedEvent>, incoming: Vec<FeedEvent>, snapshot: bool) {
    if snapshot {
        feed.clear();
    }
    let newest = feed.first().map(|e| e.seq);
    for e in incoming {
        if newest.is_none_or(|n| e.seq > n) {
            feed.insert(0, e);
        }
    }
    feed.sort_by_key(|e| std::cmp::Reverse(e.seq));
    feed.dedup_by_key(|e| e.seq);
    feed.truncate(FEED_LEN);
}

impl Reducible for State {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = (*self).clone();
        next.apply(action);
        Rc::new(next)
    }
}

mod url;

pub use url::{share_token, UrlState};

#[cfg(test)]
mod tests;
