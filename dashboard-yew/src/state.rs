//! The dashboard's whole state and the only way it changes: [`Action`]s applied by
//! [`State::apply`] (wrapped as Yew's `Reducible`). No `web_sys`, no clock, no randomness:
//! whatever the browser knows (time, time zone, a network answer) arrives inside an action,
//! so every transition is a unit test on the host.

use std::collections::BTreeMap;
use std::rc::Rc;

use protocol::live::{FeedEvent, LiveMetrics, ServerMessage, FEED_LEN, LIVE_PROTOCOL_VERSION};
use yew::Reducible;

use protocol::stats::{Interval, SiteInfo};

use crate::api::{self, ApiError, Breakdown, Dimension, RegisteredSite, Span, Summary, Timeseries};
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

/// Everything the history view shows for one (site, range) request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct History {
    /// Which request these answers belong to; answers for an older one are dropped.
    pub request: u32,
    pub span: Option<Span>,
    pub summary: Load<Summary>,
    pub series: Load<Timeseries>,
    pub breakdowns: BTreeMap<Dimension, Load<Breakdown>>,
}

/// The site registry as the Sites view shows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Registry {
    /// `Unavailable` when the credential may not manage sites (a share link) or the server
    /// has no registry: the view is then not offered.
    pub sites: Load<Vec<RegisteredSite>>,
    /// Bumped by every change made here, so the list is read again.
    pub version: u32,
    /// A change is on its way (the form waits for it).
    pub busy: bool,
    /// Why the last change was refused.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Login {
    /// A token is being checked against the server.
    pub checking: bool,
    /// Why the last attempt (or the session) ended, shown on the login form.
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct State {
    /// The admin token once the server accepted it.
    pub token: Option<String>,
    pub login: Login,
    pub sites: Vec<SiteInfo>,
    /// The site everything shows; `None` until logged in.
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
    pub history: History,
    pub registry: Registry,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    LoginStarted,
    /// The server accepted `token`; `sites` is its site list.
    LoggedIn {
        token: String,
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
    /// A history request for `span` starts; its answers carry `request`.
    HistoryRequested {
        request: u32,
        span: Option<Span>,
    },
    Summary(u32, Result<Summary, ApiError>),
    Series(u32, Result<Timeseries, ApiError>),
    Breakdown(u32, Dimension, Result<Breakdown, ApiError>),
    /// The registry as the server listed it.
    RegistryLoaded(Result<Vec<RegisteredSite>, ApiError>),
    /// A site is being added or removed.
    RegistryChangeStarted,
    /// The server's answer to the change.
    RegistryChanged(Result<(), ApiError>),
}

impl State {
    /// A fresh state that will check a token found in session storage.
    pub fn restoring(token: Option<String>) -> Self {
        State {
            login: Login {
                checking: token.is_some(),
                message: None,
            },
            ..State::default()
        }
    }

    pub fn apply(&mut self, action: Action) {
        match action {
            Action::LoginStarted => {
                self.login = Login {
                    checking: true,
                    message: None,
                }
            }
            Action::LoggedIn { token, sites } => {
                self.token = Some(token);
                self.login = Login::default();
                self.set_sites(sites);
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
            Action::SitesLoaded(sites) => self.set_sites(sites),
            Action::SelectSite(site) => {
                if self.site.as_deref() != Some(site.as_str()) {
                    self.site = Some(site);
                    self.clear_site_data();
                }
            }
            Action::ShowView(view) => self.view = view,
            Action::Conn(conn) => self.conn = conn,
            Action::Live(msg) => self.apply_live(*msg),
            Action::SetRange(range) => self.range = range,
            Action::HistoryRequested { request, span } => {
                self.history = History {
                    request,
                    span,
                    summary: pending(span.is_some()),
                    series: pending(span.is_some()),
                    breakdowns: api::TABLES
                        .iter()
                        .map(|d| (*d, pending(span.is_some())))
                        .collect(),
                };
            }
            Action::Summary(request, r) => {
                if self.history.request == request {
                    self.history.summary = Load::from_result(r);
                }
            }
            Action::Series(request, r) => {
                if self.history.request == request {
                    self.history.series = Load::from_result(r);
                }
            }
            Action::Breakdown(request, dim, r) => {
                if self.history.request == request {
                    self.history.breakdowns.insert(dim, Load::from_result(r));
                }
            }
            Action::RegistryLoaded(r) => {
                self.registry.sites = match r {
                    // Not a credential that manages sites: no Sites view.
                    Err(ApiError::Unauthorized) => Load::Unavailable,
                    r => Load::from_result(r),
                };
                if !self.can_manage_sites() && self.view == View::Sites {
                    self.view = View::Live;
                }
            }
            Action::RegistryChangeStarted => {
                self.registry.busy = true;
                self.registry.error = None;
            }
            Action::RegistryChanged(r) => {
                self.registry.busy = false;
                match r {
                    // 404 on a removal: the site was already gone (another tab, the CLI);
                    // reading the list again shows what is there.
                    Ok(()) | Err(ApiError::NotFound) => {
                        self.registry.version = self.registry.version.wrapping_add(1)
                    }
                    // The server's own words ("may only contain letters, …") say what to change.
                    Err(ApiError::Status(_, message)) if !message.is_empty() => {
                        self.registry.error = Some(message)
                    }
                    Err(e) => self.registry.error = Some(e.to_string()),
                }
            }
        }
    }

    /// Is the Sites view offered? Until the registry answers, yes (an admin signed in).
    pub fn can_manage_sites(&self) -> bool {
        !matches!(self.registry.sites, Load::Unavailable)
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
        let known = self
            .site
            .as_ref()
            .and_then(|s| self.sites.iter().find(|i| &i.site == s));
        let live_events = self.live.as_ref().map_or(0, |m| m.today.events);
        known.is_none_or(|i| i.events == 0) && live_events == 0 && self.feed.is_empty()
    }
}

/// `Loading` for a request that will be answered, `Idle` for one that will not.
fn pending<T>(will_load: bool) -> Load<T> {
    if will_load {
        Load::Loading
    } else {
        Load::Idle
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

#[cfg(test)]
mod tests;
