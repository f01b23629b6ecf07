//! The tracker, demo site and dashboard files every mode serves: embedded in the binary at
//! build time (`build.rs`), or read from `--assets-dir` when given. Which mounts a mode serves
//! is decided by the mode (the collector: tracker and demo; the processor: the dashboard;
//! standalone: all three).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use footfall_http::{Mount, StaticFiles, StaticService};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// Where a build without embedded assets says to get them.
const NOT_EMBEDDED: &str =
    "none embedded: this footfall binary was built before `cargo xtask dist`";

/// The asset set: `dir` when given (read now; an unreadable folder is a start-up error,
/// since the operator asked for it), else the embedded files.
pub fn load(dir: Option<&Path>) -> anyhow::Result<Arc<StaticFiles>> {
    let files = match dir {
        Some(dir) => StaticFiles::from_dir(dir)
            .with_context(|| format!("cannot read --assets-dir {}", dir.display()))?,
        None if embedded::FILES.is_empty() => StaticFiles::empty(NOT_EMBEDDED),
        None => StaticFiles::from_embedded(embedded::FILES, "embedded in the binary"),
    };
    Ok(Arc::new(files))
}

/// Serves `mounts` of `files`, and says at start-up which of them this build lacks.
pub fn service(files: Arc<StaticFiles>, mounts: Vec<Mount>) -> StaticService {
    let missing: Vec<&str> = mounts
        .iter()
        .filter(|m| !m.is_built(&files))
        .map(|m| m.name)
        .collect();
    if missing.is_empty() {
        tracing::info!(
            source = files.source(),
            files = files.len(),
            "static assets"
        );
    } else {
        tracing::warn!(
            source = files.source(),
            "not available: {}. Build them with `cargo xtask dist` before building footfall, \
             or start footfall with --assets-dir pointing at a dist/ folder",
            missing.join(", ")
        );
    }
    StaticService::new(files, mounts)
}
