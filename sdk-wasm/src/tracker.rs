//! The tracker's state machine: records events, keeps the session, cuts batches and reacts
//! to delivery results. It does no IO: the browser glue feeds it page facts and storage
//! contents and carries its batches, so every rule here is unit-tested on the host.

use alloc::string::String;

use crate::autocapture::{self, Clicked};
use crate::clock::Clock;
use crate::config::Config;
use crate::event::{self, Context, Event, Props, Target};
use crate::ids::Rng;
use crate::ignore::Reason;
use crate::queue::{Queue, MAX_BATCH_EVENTS};
use crate::session::Session;
use crate::transport::{Backoff, Outcome};

/// A click on a same-site link this recently before `pagehide` means the visitor is moving
/// to the next page of the site, not leaving: no `session_end` then.
pub const INTERNAL_NAV_WINDOW_MS: u64 = 5_000;

/// The fields of [`Tracker::stats_csv`], in order; `npm/src/core.js` mirrors them.
pub const STATS_FIELDS: [&str; 10] = [
    "queued", "recorded", "sent", "dropped", "rejected", "retries", "invalid", "errors", "ignored",
    "consent",
];

/// Counters reported by `stats()`: errors are swallowed, never thrown, so they are counted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub recorded: u64,
    /// Events the collector accepted (or that went out in a beacon).
    pub sent: u64,
    /// Events the collector refused for good (400/413/415).
    pub rejected: u64,
    /// Failed attempts that will be retried.
    pub retries: u64,
    /// Calls refused: invalid event name, identify with a bad id, and the like.
    pub invalid: u64,
}

/// What some kinds of events carry besides the common fields.
#[derive(Default)]
struct Extra<'a> {
    title: Option<&'a str>,
    referrer: Option<&'a str>,
    props: Option<&'a Props>,
    target: Option<&'a Target<'a>>,
}

enum Touch {
    Continued,
    Started { previous: Option<Session> },
}

pub struct Tracker<C: Clock> {
    cfg: Config,
    ctx: Context,
    clock: C,
    rng: Rng,
    queue: Queue,
    backoff: Backoff,
    session: Option<Session>,
    /// Set by `identify()`.
    user_id: Option<String>,
    /// Why nothing is recorded on this page, if so.
    ignored: Option<Reason>,
    consent: bool,
    // The queue's front, in order: the events of the `fetch` in flight (`in_flight`), then
    // events beaconed during an outage and kept (`kept`), then the batch handed to
    // `sendBeacon` and not answered yet (`beacon`), then the rest.
    /// Events at the front in a `fetch` not answered yet.
    in_flight: Option<usize>,
    /// Events beaconed while the collector was failing and kept for a resend (see
    /// `beaconed`); `drain` skips them.
    kept: usize,
    /// Events handed to `sendBeacon`, answered synchronously by `beaconed`.
    beacon: Option<usize>,
    /// The page events are attributed to: `location.href` as of the last navigation.
    url: String,
    /// URL of the last page view, so SPA routers that push the same URL twice or
    /// `replaceState` without a route change do not count twice.
    last_page: Option<String>,
    /// `document.referrer` belongs to the first page view of a document only.
    referrer_used: bool,
    internal_nav_at: Option<u64>,
    /// Storage writes pending.
    session_dirty: bool,
    queue_dirty: bool,
    pub stats: Stats,
}

impl<C: Clock> Tracker<C> {
    pub fn new(cfg: Config, ctx: Context, clock: C, seed: u64) -> Self {
        let consent = !cfg.require_consent;
        Tracker {
            queue: Queue::new(cfg.max_queue),
            cfg,
            ctx,
            clock,
            rng: Rng::new(seed),
            backoff: Backoff::default(),
            session: None,
            user_id: None,
            ignored: None,
            consent,
            in_flight: None,
            kept: 0,
            beacon: None,
            url: String::new(),
            last_page: None,
            referrer_used: false,
            internal_nav_at: None,
            session_dirty: false,
            queue_dirty: false,
            stats: Stats::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Marks this page as not tracked. Nothing is recorded or sent afterwards.
    pub fn ignore(&mut self, reason: Reason) {
        self.ignored = Some(reason);
        self.queue.clear();
    }

    pub fn ignored(&self) -> Option<Reason> {
        self.ignored
    }

    fn active(&self) -> bool {
        self.ignored.is_none() && self.consent
    }

    /// Picks up the session of this tab and the events an earlier page could not send.
    /// (Events too old for the collector need no filtering here: it refuses them one by
    /// one and accepts the rest of their batch.)
    pub fn restore(&mut self, session: Option<&str>, queue: Option<&str>) {
        if let Some((s, user_id)) = session.and_then(Session::decode) {
            self.session = Some(s);
            self.user_id = user_id;
        }
        if let Some(stored) = queue {
            if self.queue.restore(stored) > 0 {
                self.queue_dirty = true;
            }
        }
    }

    // ---- recording ------------------------------------------------------------------

    /// The page's URL changed (load, `pushState`, `popstate`, ...). Later events belong to
    /// it.
    pub fn set_url(&mut self, url: &str) {
        if self.url != url {
            self.url = String::from(url);
        }
    }

    /// Records a page view of the current URL unless it is the page already counted (SPA
    /// routers often push or replace the same URL). `referrer` is `document.referrer`.
    pub fn page_view(&mut self, title: &str, referrer: &str) -> bool {
        if !self.active() || self.last_page.as_ref() == Some(&self.url) {
            return false;
        }
        self.last_page = Some(self.url.clone());
        let referrer = (!core::mem::replace(&mut self.referrer_used, true)).then_some(referrer);
        self.record(
            "page_view",
            Extra {
                title: Some(title),
                referrer,
                ..Extra::default()
            },
        );
        true
    }

    /// A page restored from the back/forward cache is a new view of the same URL.
    pub fn restored(&mut self) {
        self.last_page = None;
    }

    /// A custom event from `track()`. Invalid names are refused and counted.
    pub fn track(&mut self, name: &str, props: &Props) -> bool {
        if !event::valid_name(name) {
            self.stats.invalid += 1;
            return false;
        }
        if !self.active() {
            return false;
        }
        self.record(
            name,
            Extra {
                props: Some(props),
                ..Extra::default()
            },
        );
        true
    }

    /// An autocaptured click (see [`autocapture::classify`]) with the element's
    /// `data-footfall-prop-*` props.
    pub fn click(&mut self, clicked: &Clicked<'_>, props: &Props) {
        if !self.active() || !self.cfg.auto_clicks {
            return;
        }
        let name = autocapture::classify(clicked, host_of(&self.url));
        // A same-site link to another document: the visitor is probably moving on within
        // the site (see `leave`). A `#fragment` link to this page is not a navigation.
        let other_document = clicked
            .href
            .is_some_and(|h| without_fragment(h) != without_fragment(&self.url));
        if name == "click" && other_document {
            self.internal_nav_at = Some(self.clock.now_ms());
        }
        let target = Target {
            tag: clicked.tag,
            text: clicked.text,
            href: clicked.href,
            id: clicked.id,
        };
        self.record(
            name,
            Extra {
                props: Some(props),
                target: Some(&target),
                ..Extra::default()
            },
        );
    }

    /// `identify(id)` attaches a user id to this tab's later events (kept in
    /// sessionStorage with the session); `None` or `""` clears it.
    pub fn identify(&mut self, user_id: Option<&str>) -> bool {
        let user_id = user_id.filter(|u| !u.is_empty());
        if user_id.is_some_and(|u| !event::valid_user_id(u)) {
            self.stats.invalid += 1;
            return false;
        }
        self.user_id = user_id.map(String::from);
        self.session_dirty = true;
        true
    }

    /// `consent(false)` stops recording and forgets queued events; `consent(true)` starts
    /// (again). Returns whether recording is on.
    pub fn consent(&mut self, granted: bool) -> bool {
        self.consent = granted;
        if !granted {
            self.queue.clear();
            self.in_flight = None;
            self.kept = 0;
            self.queue_dirty = true;
            // The next grant counts the current page again.
            self.last_page = None;
        }
        self.active()
    }

    /// The page is going away (`pagehide`): ends the session unless the visitor just
    /// clicked a link to another page of the site.
    pub fn leave(&mut self) {
        let now = self.clock.now_ms();
        let navigating = self
            .internal_nav_at
            .is_some_and(|t| now.saturating_sub(t) <= INTERNAL_NAV_WINDOW_MS);
        let Some(session) = &self.session else { return };
        if !self.active() || navigating || session.ended || session.is_expired(now) {
            return;
        }
        self.push("session_end", now, None, Extra::default());
        if let Some(s) = &mut self.session {
            s.ended = true;
        }
        self.session_dirty = true;
    }

    /// Marks activity at `now`: continues the session, or starts a new one when there is
    /// none or it expired.
    fn touch_session(&mut self, now: u64) -> Touch {
        self.session_dirty = true;
        match &mut self.session {
            Some(s) if !s.is_expired(now) => {
                s.last_activity = now;
                s.ended = false;
                Touch::Continued
            }
            slot => {
                let previous = slot.replace(Session::start(now, &mut self.rng));
                Touch::Started { previous }
            }
        }
    }

    /// Queues event `name` now, preceded by `session_start` (and the `session_end` of an
    /// expired session) when this activity starts a new session.
    fn record(&mut self, name: &str, extra: Extra<'_>) {
        let now = self.clock.now_ms();
        if let Touch::Started { previous } = self.touch_session(now) {
            if let Some(old) = previous.filter(|p| !p.ended) {
                // The old session ended by inactivity: its end is when it was last active.
                self.push(
                    "session_end",
                    old.last_activity,
                    Some(&old.id),
                    Extra::default(),
                );
            }
            self.push("session_start", now, None, Extra::default());
        }
        self.push(name, now, None, extra);
    }

    /// Encodes and queues one event with a fresh id, the page, the current session (unless
    /// one is named) and the user id.
    fn push(&mut self, name: &str, timestamp: u64, session_id: Option<&str>, x: Extra<'_>) {
        let id = self.rng.id(timestamp);
        let session = session_id.or(self.session.as_ref().map(|s| s.id.as_str()));
        let mut json = String::with_capacity(256);
        let event = Event {
            name,
            id: &id,
            timestamp,
            page: &self.url,
            session_id: session.unwrap_or_default(),
            referrer: x.referrer,
            title: x.title,
            user_id: self.user_id.as_deref(),
            props: x.props,
            target: x.target,
        };
        event.encode(&self.ctx, &mut json);
        if self.queue.push(&json, timestamp) {
            // The oldest event went: it belonged to the request in flight, if any, else
            // to the kept beacons.
            match &mut self.in_flight {
                Some(n) if *n > 0 => *n -= 1,
                _ => self.kept = self.kept.saturating_sub(1),
            }
        }
        self.stats.recorded += 1;
        self.queue_dirty = true;
    }

    // ---- sending --------------------------------------------------------------------

    /// The next batch to `fetch` now, if one is due: the queue holds a full batch, or its
    /// oldest event waited the flush interval; never while a request is in flight or the
    /// backoff says wait.
    pub fn next_batch(&mut self) -> Option<String> {
        let now = self.clock.now_ms();
        if self.in_flight.is_some() || !self.backoff.ready(now) || !self.active() {
            return None;
        }
        let since = self.queue.waiting_since?;
        let due = self.queue.len() >= self.cfg.batch_size
            || now.saturating_sub(since) >= self.cfg.flush_interval_ms;
        if !due {
            return None;
        }
        // Everything waiting goes, up to the per-request limits: after an outage or with a
        // restored backlog, that drains the queue in full batches.
        let b = self.queue.batch(0, MAX_BATCH_EVENTS, &self.cfg.site, now)?;
        self.in_flight = Some(b.count);
        // Kept beacons at the front are now part of this request.
        self.kept = self.kept.saturating_sub(b.count);
        Some(b.body)
    }

    /// The answer to the batch from [`next_batch`](Self::next_batch): the HTTP status (0
    /// for a network error) and `Retry-After` in seconds (0 when absent).
    pub fn delivered(&mut self, status: u16, retry_after_s: u32) {
        let Some(count) = self.in_flight.take() else {
            return;
        };
        let now = self.clock.now_ms();
        match Outcome::from_status(status, retry_after_s) {
            Outcome::Delivered => {
                self.backoff.reset();
                self.queue.remove(0, count);
                self.stats.sent += count as u64;
            }
            Outcome::Rejected => {
                self.backoff.reset();
                self.queue.remove(0, count);
                self.stats.rejected += count as u64;
            }
            Outcome::Retry { retry_after_ms } => {
                let random = self.rng.next_u64();
                self.backoff.fail(now, retry_after_ms, random);
                self.stats.retries += 1;
            }
        }
        self.queue_dirty = true;
    }

    /// Milliseconds until [`next_batch`](Self::next_batch) may return something, or `None`
    /// when there is nothing to send (the shell then sets no timer at all).
    pub fn wake_in(&self) -> Option<u64> {
        if self.in_flight.is_some() || !self.active() {
            return None;
        }
        let since = self.queue.waiting_since?;
        let now = self.clock.now_ms();
        let due = if self.queue.len() >= self.cfg.batch_size {
            now
        } else {
            since.saturating_add(self.cfg.flush_interval_ms)
        };
        Some(due.max(self.backoff.retry_at()).saturating_sub(now))
    }

    /// For `sendBeacon` when the page is hidden or unloading: the next batch of everything
    /// not already in a `fetch`, due or not. Answer with [`beaconed`](Self::beaconed).
    pub fn drain(&mut self) -> Option<String> {
        if !self.active() {
            return None;
        }
        let now = self.clock.now_ms();
        let skip = self.in_flight.unwrap_or(0) + self.kept;
        let b = self
            .queue
            .batch(skip, MAX_BATCH_EVENTS, &self.cfg.site, now)?;
        self.beacon = Some(b.count);
        Some(b.body)
    }

    /// Whether the browser took the beacon. A refused one (quota) stays queued, and is
    /// persisted for the next page. So does one sent while the collector is failing: a
    /// beacon's answer is never seen, so it is only a best-effort copy then, and the next
    /// page sends the events again (the collector drops the duplicate by `eventId`).
    pub fn beaconed(&mut self, ok: bool) {
        match self.beacon.take() {
            Some(count) if ok && self.backoff.failures() == 0 => {
                let skip = self.in_flight.unwrap_or(0) + self.kept;
                self.queue.remove(skip, count);
                self.stats.sent += count as u64;
                self.queue_dirty = true;
            }
            Some(count) if ok => self.kept += count,
            _ => {}
        }
    }

    // ---- persistence ----------------------------------------------------------------

    /// The session record for sessionStorage, when it changed since the last call.
    pub fn take_session_write(&mut self) -> Option<String> {
        if !core::mem::take(&mut self.session_dirty) {
            return None;
        }
        let user_id = self.user_id.as_deref();
        Some(
            self.session
                .as_ref()
                .map(|s| s.encode(user_id))
                .unwrap_or_default(),
        )
    }

    /// The queue for localStorage (empty: remove the key), when it changed.
    pub fn take_queue_write(&mut self) -> Option<String> {
        if !core::mem::take(&mut self.queue_dirty) {
            return None;
        }
        Some(String::from(self.queue.to_storage()))
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    pub fn session_id(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.id.as_str())
    }

    /// Counters for `stats()` in JS, comma-separated in the order of [`STATS_FIELDS`]
    /// (the shell names them; field names in the wasm would only cost download).
    pub fn stats_csv(&self, errors: u64) -> String {
        let mut out = String::with_capacity(64);
        for n in [
            self.queue.len() as u64,
            self.stats.recorded,
            self.stats.sent,
            self.queue.dropped,
            self.stats.rejected,
            self.stats.retries,
            self.stats.invalid,
            errors,
        ] {
            crate::json::write_u64(&mut out, n);
            out.push(',');
        }
        out.push_str(self.ignored.map_or("", Reason::as_str));
        out.push_str(if self.consent { ",granted" } else { ",denied" });
        out
    }
}

/// `url` up to its `#fragment`.
fn without_fragment(url: &str) -> &str {
    crate::text::split_once(url, b'#').map_or(url, |(doc, _)| doc)
}

/// `example.com:8080` from `https://example.com:8080/path?q#h` (what `location.host` says).
fn host_of(url: &str) -> &str {
    let start = crate::text::find(url, "//").map_or(0, |i| i + 2);
    let rest = url.get(start..).unwrap_or_default();
    let end = rest
        .bytes()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    rest.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests;
