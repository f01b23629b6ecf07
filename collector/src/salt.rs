//! The daily salt of the visitor hash (see `protocol::visitor`).
//!
//! Every collector of a deployment must use the same salt on the same UTC day, or one
//! visitor would count once per collector; and a salt must be unrecoverable once its day is
//! over. So salts are random, kept by a shared [`SaltSource`] (the embedded store in
//! standalone mode) that deletes old ones, and cached here for the current day.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use protocol::visitor::Salt;
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

/// Caches today's salt so the hot path takes a read lock, not a store round-trip.
pub(crate) struct SaltCache {
    source: Arc<dyn SaltSource>,
    current: RwLock<Option<(i64, Salt)>>,
}

impl SaltCache {
    pub(crate) fn new(source: Arc<dyn SaltSource>) -> Self {
        SaltCache {
            source,
            current: RwLock::new(None),
        }
    }

    pub(crate) async fn get(&self, day: i64) -> Result<Salt, SaltError> {
        if let Some((d, salt)) = &*self.current.read().unwrap_or_else(PoisonError::into_inner) {
            if *d == day {
                return Ok(salt.clone());
            }
        }
        let salt = self.source.salt_for_day(day).await?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some((day, salt.clone()));
        Ok(salt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn same_day_same_salt_new_day_new_salt() {
        let cache = SaltCache::new(Arc::new(EphemeralSalts::default()));
        let a = cache.get(100).await.expect("salt");
        assert_eq!(a, cache.get(100).await.expect("salt"));
        assert_ne!(a, cache.get(101).await.expect("salt"));
    }
}
