//! localStorage / sessionStorage access that never throws: storage is missing in sandboxed
//! iframes and some private modes, and full when the quota is reached. Then the tracker
//! simply keeps its state in memory.
//!
//! Only writes: the shell reads the stored values once and passes them to `start`. No
//! web-sys: one tiny imported JS function (`store` in `npm/src/load.js`, see `abi`)
//! instead of `window` lookups and `Storage` objects. It catches what the storage throws
//! (sandboxed iframe, private mode, quota) where it happens, so the wasm needs no
//! exception passing. The keys, per site (`npm/src/core.js` reads them back):
//! `footfall:queue:<site>` in localStorage, the unsent events (survives the tab, so the
//! next visit sends them); `footfall:session:<site>` in sessionStorage, the session and the
//! `identify()` user id (per tab, gone with it).

use super::abi::storage_set;

#[derive(Clone, Copy)]
pub enum Area {
    /// `localStorage`: the queue.
    Local,
    /// `sessionStorage`: the session.
    Session,
}

/// Writes `value` for `site` (see the keys above), or removes it when empty. Returns false
/// when the browser refused (no storage, quota).
pub fn set(area: Area, site: &str, value: &str) -> bool {
    storage_set(matches!(area, Area::Local), site, value)
}
