//! Which sites the collector takes events for. By default (in `footfall`) only registered
//! ones: made-up `site` values are refused with a 403 before anything is decided about them,
//! so they cost no state anywhere — no live-metrics entry, no stored row, no salt lookup (the
//! security review, issue 12, pushed a real site out of the live view with 12,000 of them).
//!
//! The collector only asks; who keeps the registry is wired in by `footfall`: the embedded
//! store's registry in standalone, the `footfall.sites` topic ([`crate::kafka::KafkaSites`])
//! for distributed collectors.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// A registry of sites, asked on every ingest request (so it answers from memory).
pub trait SiteDirectory: Send + Sync + 'static {
    /// Whether events for `site` (validated, lower-case) are accepted.
    fn contains(&self, site: &str) -> bool;

    /// Whether the registry has been read at least once. Until then nobody can tell a known
    /// site from an unknown one, so ingestion answers 503 (retry) rather than 403 (drop).
    fn is_loaded(&self) -> bool {
        true
    }
}

/// Which sites the collector accepts.
#[derive(Clone, Default)]
pub enum SitePolicy {
    /// Every valid site name (`--accept-any-site`; the library default, for tests and
    /// embedders that decide elsewhere).
    #[default]
    AcceptAny,
    /// Only the sites of this registry.
    Known(Arc<dyn SiteDirectory>),
}

impl std::fmt::Debug for SitePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SitePolicy::AcceptAny => "AcceptAny",
            SitePolicy::Known(_) => "Known(..)",
        })
    }
}

/// What a [`SitePolicy`] says about one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Accept,
    Unknown,
    /// The registry is not loaded yet.
    NotReady,
}

impl SitePolicy {
    pub fn admit(&self, site: &str) -> Admission {
        match self {
            SitePolicy::AcceptAny => Admission::Accept,
            SitePolicy::Known(dir) if !dir.is_loaded() => Admission::NotReady,
            SitePolicy::Known(dir) if dir.contains(site) => Admission::Accept,
            SitePolicy::Known(_) => Admission::Unknown,
        }
    }
}

/// A registry held in memory, filled by whoever follows the real one (the sites topic) and
/// by tests.
#[derive(Default)]
pub struct SiteSet {
    sites: RwLock<HashSet<String>>,
    loaded: AtomicBool,
}

impl SiteSet {
    /// A loaded set of these sites.
    pub fn of<I: IntoIterator<Item = S>, S: Into<String>>(sites: I) -> Self {
        let set = SiteSet::default();
        for s in sites {
            set.insert(s.into());
        }
        set.mark_loaded();
        set
    }

    pub fn insert(&self, site: String) {
        self.sites
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(site);
    }

    pub fn remove(&self, site: &str) {
        self.sites
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(site);
    }

    pub fn len(&self) -> usize {
        self.sites
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn mark_loaded(&self) {
        self.loaded.store(true, Ordering::Release);
    }
}

impl SiteDirectory for SiteSet {
    fn contains(&self, site: &str) -> bool {
        self.sites
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(site)
    }

    fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        assert_eq!(SitePolicy::AcceptAny.admit("x"), Admission::Accept);
        let set = Arc::new(SiteSet::default());
        let known = SitePolicy::Known(set.clone());
        assert_eq!(known.admit("example.com"), Admission::NotReady);
        set.mark_loaded();
        assert_eq!(known.admit("example.com"), Admission::Unknown);
        set.insert("example.com".into());
        assert_eq!(known.admit("example.com"), Admission::Accept);
        set.remove("example.com");
        assert_eq!(known.admit("example.com"), Admission::Unknown);
        assert!(set.is_empty());
    }
}
