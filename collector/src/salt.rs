//! The daily salt of the visitor hash (see `protocol::visitor`).
//!
//! Every collector of a deployment must use the same salt on the same UTC day, or one
//! visitor would count once per collector; and a salt must be unrecoverable once its day is
//! over. So salts are random, kept by a shared [`SaltSource`] (the embedded store in
//! standalone mode) that deletes old ones, and cached here: today's, and tomorrow's from a
//! few minutes before midnight, fetched by one request at a time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use protocol::visitor::{day_of, Salt};
use rand::RngCore;

use crate::BoxFuture;

#[derive(Debug, Clone, thiserror::Error)]
#[error("daily salt unavailable: {0}")]
pub struct SaltError(pub String);

/// Hands out the salt of a UTC day (days since the epoch), creating it on first use and
/// forgetting salts of earlier days.
pub trait SaltSource: Send + Sync + 'static {
    fn salt_for_day(&self, day: i64) -> BoxFuture<'_, Result<Salt, SaltError>>;
}

/// A fresh random salt.
pub fn random_salt() -> Salt {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Salt::from_bytes(bytes)
}

/// Salts kept only in this process: right for a single collector whose restarts may start
/// a new salt (visitors are then counted anew for the rest of the day), and for tests.
#[derive(Default)]
pub struct EphemeralSalts {
    current: Mutex<Option<(i64, Salt)>>,
}

impl SaltSource for EphemeralSalts {
    fn salt_for_day(&self, day: i64) -> BoxFuture<'_, Result<Salt, SaltError>> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let salt = match &*current {
            Some((d, salt)) if *d == day => salt.clone(),
            _ => {
                let salt = random_salt();
                *current = Some((day, salt.clone()));
                salt
            }
        };
        Box::pin(async move { Ok(salt) })
    }
}

/// How long before midnight (UTC) tomorrow's salt is fetched, so that the first requests of
/// a day find it cached instead of all waiting for an agreement round.
pub const PREFETCH_AHEAD_MS: i64 = 10 * 60 * 1000;
const DAY_MS: i64 = 86_400_000;

/// Caches the salts of today and (from [`PREFETCH_AHEAD_MS`] before midnight) tomorrow, so
/// the hot path takes a read lock, not a store round-trip. Fetches are single-flight: when
/// the cache misses (a new day, a restart), one request fetches and the others wait for its
/// salt instead of each asking the source at once.
pub(crate) struct SaltCache {
    inner: Arc<CacheInner>,
}

struct CacheInner {
    source: Arc<dyn SaltSource>,
    /// At most two days: today's and tomorrow's.
    salts: RwLock<BTreeMap<i64, Salt>>,
    /// Held while a fetch runs: the single flight.
    fetching: tokio::sync::Mutex<()>,
    /// The day a prefetch was started for, so it starts once.
    prefetching: AtomicI64,
}

impl SaltCache {
    pub(crate) fn new(source: Arc<dyn SaltSource>) -> Self {
        SaltCache {
            inner: Arc::new(CacheInner {
                source,
                salts: RwLock::new(BTreeMap::new()),
                fetching: tokio::sync::Mutex::new(()),
                prefetching: AtomicI64::new(i64::MIN),
            }),
        }
    }

    /// The salt of the UTC day of `now_ms` (the server's receive time).
    pub(crate) async fn get(&self, now_ms: i64) -> Result<Salt, SaltError> {
        let day = day_of(now_ms);
        let salt = match self.inner.cached(day) {
            Some(salt) => salt,
            None => self.inner.fetch(day).await?,
        };
        if now_ms >= (day + 1) * DAY_MS - PREFETCH_AHEAD_MS {
            self.prefetch(day + 1);
        }
        Ok(salt)
    }

    /// Fetches `day`'s salt in the background, once.
    fn prefetch(&self, day: i64) {
        let started = self.inner.prefetching.fetch_max(day, Ordering::Relaxed);
        if started >= day || self.inner.cached(day).is_some() {
            return;
        }
        let inner = self.inner.clone();
        tokio::spawn(async move {
            if let Err(e) = inner.fetch(day).await {
                // The first request of the day fetches it then.
                tracing::warn!(error = %e, "cannot fetch tomorrow's salt ahead of midnight");
                inner.prefetching.store(day - 1, Ordering::Relaxed);
            }
        });
    }
}

impl CacheInner {
    fn cached(&self, day: i64) -> Option<Salt> {
        self.salts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&day)
            .cloned()
    }

    async fn fetch(&self, day: i64) -> Result<Salt, SaltError> {
        let _flight = self.fetching.lock().await;
        // Someone else's fetch may have brought it while this one waited.
        if let Some(salt) = self.cached(day) {
            return Ok(salt);
        }
        let salt = self.source.salt_for_day(day).await?;
        let mut salts = self.salts.write().unwrap_or_else(PoisonError::into_inner);
        salts.insert(day, salt.clone());
        // Keep today's and tomorrow's; a salt of a day that is over is dropped.
        while salts.len() > 2 {
            salts.pop_first();
        }
        Ok(salt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    const DAY: i64 = 20_000;

    #[tokio::test]
    async fn same_day_same_salt_new_day_new_salt() {
        let cache = SaltCache::new(Arc::new(EphemeralSalts::default()));
        let a = cache.get(DAY * DAY_MS).await.expect("salt");
        assert_eq!(a, cache.get(DAY * DAY_MS + 1).await.expect("salt"));
        assert_ne!(a, cache.get((DAY + 1) * DAY_MS).await.expect("salt"));
    }

    /// A real source behind a slow round trip (as an agreement through Kafka is), counting
    /// the days it was asked for.
    #[derive(Default)]
    struct Slow {
        salts: EphemeralSalts,
        asked: Mutex<Vec<i64>>,
        calls: AtomicUsize,
    }

    impl SaltSource for Slow {
        fn salt_for_day(&self, day: i64) -> BoxFuture<'_, Result<Salt, SaltError>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                self.asked.lock().expect("lock").push(day);
                tokio::time::sleep(Duration::from_millis(50)).await;
                self.salts.salt_for_day(day).await
            })
        }
    }

    /// Finding 11: at 00:00 every request that missed the cache fetched the new salt at once.
    #[tokio::test]
    async fn a_cache_miss_is_fetched_once_however_many_requests_wait() {
        let source = Arc::new(Slow::default());
        let cache = Arc::new(SaltCache::new(source.clone()));
        let requests: Vec<_> = (0..500)
            .map(|i| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.get(DAY * DAY_MS + i).await })
            })
            .collect();
        let mut salts = Vec::new();
        for r in requests {
            salts.push(r.await.expect("task").expect("salt"));
        }
        assert!(salts.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn tomorrows_salt_is_fetched_before_midnight() {
        let source = Arc::new(Slow::default());
        let cache = SaltCache::new(source.clone());
        let midnight = (DAY + 1) * DAY_MS;
        let today = cache
            .get(midnight - PREFETCH_AHEAD_MS - 1)
            .await
            .expect("salt");
        assert_eq!(*source.asked.lock().expect("lock"), [DAY]);
        // Inside the window: tomorrow's is fetched in the background, once.
        for ms in 0..100 {
            let salt = cache
                .get(midnight - PREFETCH_AHEAD_MS + ms)
                .await
                .expect("salt");
            assert_eq!(salt, today);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(*source.asked.lock().expect("lock"), [DAY, DAY + 1]);
        // At midnight nobody waits for a fetch: tomorrow's is there, and is a new salt.
        let calls = source.calls.load(Ordering::SeqCst);
        let tomorrow = cache.get(midnight).await.expect("salt");
        assert_ne!(tomorrow, today);
        assert_eq!(source.calls.load(Ordering::SeqCst), calls);
        // Yesterday's is gone from the cache once the day after tomorrow's is fetched.
        cache.get(midnight + DAY_MS).await.expect("salt");
        assert!(cache.inner.cached(DAY).is_none());
    }
}
