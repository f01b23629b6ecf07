//! The site registry: events are accepted only for sites that exist (security review,
//! issue 12 — made-up `site` values pushed real sites out of the live view, and every one of
//! them cost state). The store keeps the registry ([`Store::registered_sites`]); a
//! [`SiteRegistry`] holds it in memory for the per-request check, changes it through the
//! store, and announces changes to whoever else needs them:
//!
//! - standalone: the collector in the same process asks [`SiteRegistry::contains`]; a refresh
//!   every few seconds ([`SiteRegistry::run_refresh`]) picks up `footfall sites add` run from
//!   another shell against the same data folder;
//! - distributed: collectors have no store, so processors publish the registry to the
//!   compacted `footfall.sites` topic ([`SitesAnnouncer`], implemented in `sites/kafka.rs`),
//!   which every collector follows.
//!
//! The HTTP side (`/api/sites`) is [`SitesApi`].

mod api;
#[cfg(feature = "kafka")]
mod kafka;

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

pub use api::SitesApi;
#[cfg(feature = "kafka")]
pub use kafka::{SitesTopic, SitesTopicError};

use crate::store::{RegisteredSite, Store, StoreError};
use crate::BoxFuture;

/// Tells the rest of a deployment that the registry changed.
pub trait SitesAnnouncer: Send + Sync + 'static {
    /// `site` was registered (`Some`) or removed (`None`).
    fn announce<'a>(
        &'a self,
        site: &'a str,
        registered: Option<&'a RegisteredSite>,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// See the module docs. Cheap to clone; clones share one registry.
#[derive(Clone)]
pub struct SiteRegistry {
    store: Arc<dyn Store>,
    /// Site → added at (epoch ms): the check on every ingest request reads only this.
    known: Arc<RwLock<BTreeMap<String, i64>>>,
    announcer: Option<Arc<dyn SitesAnnouncer>>,
}

impl SiteRegistry {
    /// Loads the registry from `store`.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn open(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let registry = SiteRegistry {
            store,
            known: Arc::default(),
            announcer: None,
        };
        registry.refresh().await?;
        Ok(registry)
    }

    /// Announces every change (and, now, every registered site) through `announcer`.
    ///
    /// # Errors
    /// The announcer's, when it cannot publish the registry.
    pub async fn with_announcer(
        mut self,
        announcer: Arc<dyn SitesAnnouncer>,
    ) -> Result<Self, String> {
        // A lost or new topic is filled again from the store, the registry's durable home.
        for site in self.snapshot() {
            announcer.announce(&site.site, Some(&site)).await?;
        }
        self.announcer = Some(announcer);
        Ok(self)
    }

    /// Whether events for `site` (validated, lower-case) are accepted.
    pub fn contains(&self, site: &str) -> bool {
        self.read().contains_key(site)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, i64>> {
        self.known.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, i64>> {
        self.known.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The registry as this process knows it, sorted by name.
    pub fn snapshot(&self) -> Vec<RegisteredSite> {
        self.read()
            .iter()
            .map(|(site, added_at)| RegisteredSite {
                site: site.clone(),
                added_at: *added_at,
            })
            .collect()
    }

    /// The registry as the store has it now (another processor may have changed it).
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn list(&self) -> Result<Vec<RegisteredSite>, StoreError> {
        self.refresh().await?;
        Ok(self.snapshot())
    }

    /// Reads the registry from the store again.
    ///
    /// # Errors
    /// When the store cannot be read; the registry in memory is kept.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let sites = self.store.registered_sites().await?;
        *self.write() = sites.into_iter().map(|s| (s.site, s.added_at)).collect();
        Ok(())
    }

    /// Registers `site` (validated, lower-case); `Ok(false)` when it existed already.
    ///
    /// # Errors
    /// When the store cannot write it. An announcement that fails is logged: the store has
    /// the site, and the next start-up announces it again.
    pub async fn add(&self, site: &str, now_ms: i64) -> Result<bool, StoreError> {
        let entry = RegisteredSite {
            site: site.to_string(),
            added_at: now_ms,
        };
        let added = self.store.register_site(entry.clone()).await?;
        let added_at = *self.write().entry(site.to_string()).or_insert(now_ms);
        let entry = RegisteredSite { added_at, ..entry };
        self.announce(site, Some(&entry)).await;
        Ok(added)
    }

    /// Removes `site`; `Ok(false)` when it was not registered. Its data stays.
    ///
    /// # Errors
    /// When the store cannot write it.
    pub async fn remove(&self, site: &str) -> Result<bool, StoreError> {
        let removed = self.store.unregister_site(site.to_string()).await?;
        self.write().remove(site);
        self.announce(site, None).await;
        Ok(removed)
    }

    async fn announce(&self, site: &str, registered: Option<&RegisteredSite>) {
        if let Some(announcer) = &self.announcer {
            if let Err(e) = announcer.announce(site, registered).await {
                tracing::warn!(error = %e, site, "cannot announce a site registry change");
            }
        }
    }

    /// Refreshes from the store every `every` until `shutdown`.
    pub async fn run_refresh(
        self,
        every: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = &mut shutdown => return,
            }
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "cannot refresh the site registry");
            }
        }
    }
}
