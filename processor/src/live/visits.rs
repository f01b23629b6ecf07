//! Today's visit figures in the live view (`today.visits`, `bounceRate`, `visitDuration`,
//! `viewsPerVisit`), read from the store's visit records for the sites somebody watches.
//!
//! Why from the store and not from the deltas: a visit's figures need per-session state
//! (its page-view count decides a bounce, its first and last event its duration), which
//! counts and sketches cannot merge — and a processor that restarts would lose it. The
//! store's visits are exactly-once and shared by every processor, and they are what the
//! stats API's summary reads, so the live view and history show the same figures for today.
//! The cost is one small query per watched site every [`VISIT_REFRESH`] (the visits of one
//! UTC day, through the `(site, start)` order), independent of traffic; page views and
//! visitors stay sub-second from the deltas, visits follow within a few seconds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use protocol::time::DAY_MS;
use tokio::time::Instant;

use super::hub::{now_ms, LiveHub};
use crate::store::Store;
use crate::visit::{GroupKey, Grouping, Scope};

/// How old a watched site's visit figures may get.
pub const VISIT_REFRESH: Duration = Duration::from_secs(5);
/// How often the refresher looks for sites that are due (a new watcher waits at most this
/// long for its first figures).
const POLL: Duration = Duration::from_secs(1);

/// Keeps the hub's visit figures fresh for watched sites, every `every`, until the hub closes.
/// Run it once per hub, in a task. Sites are queried one after another, so however many are
/// watched the store sees at most one of these queries at a time.
pub async fn refresh_visits(hub: LiveHub, store: Arc<dyn Store>, every: Duration) {
    let mut fresh: HashMap<String, Instant> = HashMap::new();
    let mut poll = tokio::time::interval(POLL.min(every));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        poll.tick().await;
        let Some(watched) = hub.watched_sites() else {
            return;
        };
        fresh.retain(|site, _| watched.contains(site));
        for site in watched {
            if fresh.get(&site).is_some_and(|at| at.elapsed() < every) {
                continue;
            }
            let day = now_ms().div_euclid(DAY_MS) * DAY_MS;
            let scope = Scope {
                site: site.clone(),
                from: day,
                to: day + DAY_MS,
                filters: Vec::new(),
            };
            match store.visit_stats(scope, Grouping::Total).await {
                Ok(rows) => {
                    let totals = rows
                        .into_iter()
                        .find(|(k, _)| *k == GroupKey::Total)
                        .map(|(_, v)| v)
                        .unwrap_or_default();
                    hub.set_visits(&site, day, totals);
                }
                // Figures stay as they were; the next round tries again.
                Err(e) => tracing::debug!(%site, error = %e, "today's visits not read"),
            }
            fresh.insert(site, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use protocol::fixture::EventBuilder;

    use super::*;
    use crate::store::{SqliteConfig, SqliteStore};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watched_sites_get_todays_visits_from_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SqliteStore::open(SqliteConfig::new(dir.path())).expect("open"));
        let now = now_ms();
        // Today's two visits (one bounce; the other two page views 20 s apart) and one that
        // started yesterday, which today's figures leave out.
        let start = (now.div_euclid(DAY_MS) * DAY_MS).max(now - 3_600_000);
        let pv = |id: &str, session: &str, ts: i64| {
            EventBuilder::new("watched.test", "page_view", ts)
                .id(id)
                .session(session)
                .build()
        };
        store
            .insert_batch(
                vec![
                    pv("a1", "a", start),
                    pv("a2", "a", start + 20_000),
                    pv("b1", "b", start + 1_000),
                    pv("y1", "y", start - DAY_MS),
                ]
                .into(),
            )
            .await
            .expect("insert");
        let hub = LiveHub::default();
        let mut rx = hub.subscribe("watched.test").expect("open");
        tokio::spawn(hub.clone().run_publisher());
        tokio::spawn(refresh_visits(
            hub.clone(),
            store.clone(),
            Duration::from_millis(100),
        ));
        let today = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let today = rx.borrow_and_update().metrics.today.clone();
                if today.visits > 0 {
                    return today;
                }
                rx.changed().await.expect("open");
            }
        })
        .await
        .expect("figures within seconds");
        assert_eq!(today.visits, 2);
        assert_eq!(today.bounce_rate, 50.0);
        assert_eq!(today.visit_duration, 10);
        assert_eq!(today.views_per_visit, 1.5);
        // Unwatched sites are not queried and closing stops the refresher.
        assert_eq!(hub.watched_sites(), Some(vec!["watched.test".to_string()]));
        hub.close();
        assert_eq!(hub.watched_sites(), None);
    }
}
