//! The hub: owns the [`LiveEngine`], takes deltas, and publishes each watched site's latest
//! state on a `tokio::sync::watch` channel.
//!
//! A watch channel holds only the newest value, which is exactly the slow-client policy: a
//! client that cannot keep up skips intermediate states and gets the latest one, never an
//! unbounded queue, and never slows the engine or other clients down.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protocol::live::{FeedEvent, LiveMetrics};
use tokio::sync::watch;

use protocol::time::DAY_MS;
use protocol::Event;

use super::delta::{deltas_of, MetricsDelta};
use super::engine::LiveEngine;
use crate::visit::VisitAgg;

/// How often the publisher looks for changes. Sites publish at most every
/// [`MIN_PUBLISH_INTERVAL`]; windows also move with time, so an unchanged site is
/// re-evaluated every [`IDLE_REFRESH`].
const PUBLISH_POLL: Duration = Duration::from_millis(40);
pub const MIN_PUBLISH_INTERVAL: Duration = Duration::from_millis(200);
const IDLE_REFRESH: Duration = Duration::from_secs(1);
/// Writes (per site) a hub remembers having applied, to ignore a write published again (see
/// [`MetricsDelta::write`]). A write is published again only after its processor died before
/// it knew the first publication went out, i.e. within a consumer session timeout and a
/// redelivery: 65,536 remembered writes cover many minutes even at 100,000 events/s in
/// batches of a few thousand, in a few MiB.
pub const APPLIED_WRITES: usize = 65_536;

/// What a site's watchers see.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteView {
    pub site: String,
    pub at: i64,
    pub metrics: LiveMetrics,
    pub feed: Vec<FeedEvent>,
}

struct Channel {
    tx: watch::Sender<Arc<SiteView>>,
    published_version: u64,
    published_at: i64,
}

struct Inner {
    engine: LiveEngine,
    channels: HashMap<String, Channel>,
    /// Today's visit figures per site, as last read from the store (see `live::visits`):
    /// `(start of the UTC day they are for, figures)`.
    visits: HashMap<String, (i64, VisitAgg)>,
    applied: AppliedWrites,
    closed: bool,
}

/// The newest [`APPLIED_WRITES`] `(write, site)` pairs applied, oldest forgotten first.
#[derive(Default)]
struct AppliedWrites {
    seen: HashSet<String>,
    order: VecDeque<String>,
}

impl AppliedWrites {
    /// Whether the delta is new (untagged deltas always are); remembers it.
    fn first(&mut self, d: &MetricsDelta) -> bool {
        let Some(write) = &d.write else {
            return true;
        };
        let key = format!("{write} {}", d.site);
        if self.seen.contains(&key) {
            return false;
        }
        if self.order.len() >= APPLIED_WRITES {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.seen.insert(key.clone());
        self.order.push_back(key);
        true
    }
}

impl Inner {
    /// The engine's metrics with today's visit figures laid over them — only figures for the
    /// current UTC day, so yesterday's never show after midnight.
    fn metrics(&self, site: &str, now: i64) -> LiveMetrics {
        let mut metrics = self.engine.metrics(site, now);
        let today = now.div_euclid(DAY_MS) * DAY_MS;
        if let Some((day, v)) = self.visits.get(site) {
            if *day == today {
                metrics.today.visits = v.visits;
                metrics.today.bounce_rate = v.bounce_rate();
                metrics.today.visit_duration = v.visit_duration();
                metrics.today.views_per_visit = v.views_per_visit();
            }
        }
        metrics
    }
}

/// Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct LiveHub {
    inner: Arc<Mutex<Inner>>,
    /// Deltas recorded since the publisher's last round, one per site and recording. A
    /// channel, not a lock: standalone records from its indexing threads, which run at the
    /// lowest CPU share during a burst (`crate::priority`). A lock they held while preempted
    /// would stall the publisher's tokio worker, and with it the requests queued on that
    /// worker, until an idle CPU let them finish (a priority inversion). Sending never
    /// waits; the publisher drains the channel every [`PUBLISH_POLL`].
    recorded: mpsc::Sender<Vec<MetricsDelta>>,
    /// The publisher's end; `None` once closed, so recordings after that are dropped rather
    /// than kept for a publisher that is gone.
    inbox: Arc<Mutex<Option<mpsc::Receiver<Vec<MetricsDelta>>>>>,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Default for LiveHub {
    fn default() -> Self {
        Self::new(LiveEngine::default())
    }
}

impl LiveHub {
    pub fn new(engine: LiveEngine) -> Self {
        let (recorded, inbox) = mpsc::channel();
        LiveHub {
            inner: Arc::new(Mutex::new(Inner {
                engine,
                channels: HashMap::new(),
                visits: HashMap::new(),
                applied: AppliedWrites::default(),
                closed: false,
            })),
            recorded,
            inbox: Arc::new(Mutex::new(Some(inbox))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records events this process has just stored; they are merged in on the publisher's
    /// next round (every few tens of milliseconds), one delta per site and call rather than
    /// per event. Takes no lock the publisher takes (see [`LiveHub::recorded`]).
    pub fn record(&self, events: &[&Event]) {
        // Fails only once the hub is closed: nobody publishes any more.
        let _ = self.recorded.send(deltas_of(events.iter().copied()));
    }

    /// Merges deltas (from this process or from the metrics topic), each write of a site
    /// once (see [`MetricsDelta::write`]).
    pub fn apply(&self, deltas: &[MetricsDelta]) {
        let now = now_ms();
        let mut inner = self.lock();
        for d in deltas {
            if inner.applied.first(d) {
                inner.engine.apply(d, now);
            } else {
                tracing::debug!(site = %d.site, write = ?d.write, "write applied already");
            }
        }
    }

    /// The current state of `site`, computed now.
    pub fn view(&self, site: &str) -> SiteView {
        let now = now_ms();
        let inner = self.lock();
        SiteView {
            site: site.to_string(),
            at: now,
            metrics: inner.metrics(site, now),
            feed: inner.engine.feed(site),
        }
    }

    /// Sites somebody watches now; `None` once the hub is closed.
    pub fn watched_sites(&self) -> Option<Vec<String>> {
        let inner = self.lock();
        if inner.closed {
            return None;
        }
        Some(
            inner
                .channels
                .iter()
                .filter(|(_, c)| c.tx.receiver_count() > 0)
                .map(|(site, _)| site.clone())
                .collect(),
        )
    }

    /// Sets today's visit figures of `site` (those of the UTC day starting at `day`); they
    /// reach watchers with the next publication (within a second).
    pub fn set_visits(&self, site: &str, day: i64, visits: VisitAgg) {
        let mut inner = self.lock();
        if inner.channels.contains_key(site) {
            inner.visits.insert(site.to_string(), (day, visits));
        }
    }

    /// A receiver of `site`'s states, starting with the current one. `None` once the hub is
    /// closed (shutdown).
    pub fn subscribe(&self, site: &str) -> Option<watch::Receiver<Arc<SiteView>>> {
        let view = self.view(site);
        let mut inner = self.lock();
        if inner.closed {
            return None;
        }
        let version = inner.engine.version(site);
        let channel = inner
            .channels
            .entry(site.to_string())
            .or_insert_with(|| Channel {
                tx: watch::channel(Arc::new(view.clone())).0,
                published_version: version,
                published_at: view.at,
            });
        Some(channel.tx.subscribe())
    }

    /// Publishes changed sites until the hub is closed. Run it once per hub, in a task.
    pub async fn run_publisher(self) {
        let mut poll = tokio::time::interval(PUBLISH_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            poll.tick().await;
            if !self.publish_due() {
                return;
            }
        }
    }

    /// One publisher round; false once closed.
    pub(crate) fn publish_due(&self) -> bool {
        let recorded: Vec<MetricsDelta> = self
            .inbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|inbox| inbox.try_iter().flatten().collect())
            .unwrap_or_default();
        let now = now_ms();
        let mut inner = self.lock();
        for d in &recorded {
            inner.engine.apply(d, now);
        }
        if inner.closed {
            return false;
        }
        // Sites nobody watches any more are forgotten; they are recreated on subscribe.
        inner.channels.retain(|_, c| c.tx.receiver_count() > 0);
        let Inner {
            channels, visits, ..
        } = &mut *inner;
        visits.retain(|site, _| channels.contains_key(site));
        let due: Vec<(String, u64)> = inner
            .channels
            .iter()
            .filter_map(|(site, channel)| {
                let version = inner.engine.version(site);
                let since = now - channel.published_at;
                let changed = version != channel.published_version;
                ((changed && since >= MIN_PUBLISH_INTERVAL.as_millis() as i64)
                    || since >= IDLE_REFRESH.as_millis() as i64)
                    .then(|| (site.clone(), version))
            })
            .collect();
        for (site, version) in due {
            let view = SiteView {
                at: now,
                metrics: inner.metrics(&site, now),
                feed: inner.engine.feed(&site),
                site,
            };
            let Some(channel) = inner.channels.get_mut(&view.site) else {
                continue;
            };
            channel.published_version = version;
            channel.published_at = now;
            // Only wake watchers when something they can see is different.
            channel.tx.send_if_modified(|current| {
                if current.metrics == view.metrics && current.feed == view.feed {
                    false
                } else {
                    *current = Arc::new(view);
                    true
                }
            });
        }
        true
    }

    /// Stops publishing and drops every channel: watchers see the sender gone and close
    /// their connections with a "going away" message.
    pub fn close(&self) {
        self.inbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let mut inner = self.lock();
        inner.closed = true;
        inner.channels.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::delta::deltas_of_write;
    use crate::live::{deltas_of, test_event};

    #[tokio::test]
    async fn publishes_changes_to_watchers_and_closes() {
        let hub = LiveHub::default();
        let mut rx = hub.subscribe("s").expect("open");
        assert_eq!(rx.borrow().metrics.active_visitors, 0);
        tokio::spawn(hub.clone().run_publisher());
        hub.apply(&deltas_of(&[test_event(
            "s",
            "page_view",
            "/",
            "v1",
            now_ms(),
        )]));
        tokio::time::timeout(Duration::from_secs(2), rx.changed())
            .await
            .expect("published in time")
            .expect("open");
        assert_eq!(rx.borrow().metrics.active_visitors, 1);
        assert_eq!(rx.borrow().feed.len(), 1);
        hub.close();
        assert!(rx.changed().await.is_err(), "closing drops the sender");
        assert!(hub.subscribe("s").is_none());
    }

    #[test]
    fn a_write_published_again_counts_once() {
        let hub = LiveHub::default();
        let now = now_ms();
        let events = [
            test_event("s", "page_view", "/", "v1", now),
            test_event("t", "page_view", "/", "v2", now),
        ];
        let tagged = |write: &str| deltas_of_write(Some(write), &events);
        hub.apply(&tagged("w1"));
        hub.apply(&tagged("w1"));
        hub.apply(&tagged("w2"));
        // Untagged deltas (stores without markers) always count.
        hub.apply(&deltas_of(&events[..1]));
        assert_eq!(hub.view("s").metrics.today.pageviews, 3);
        assert_eq!(hub.view("t").metrics.today.pageviews, 2);
    }
}
