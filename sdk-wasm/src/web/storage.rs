//! localStorage / sessionStorage access that never throws: storage is missing in sandboxed
//! iframes and some private modes, and full when the quota is reached. Then the tracker
//! simply keeps its state in memory.
//!
//! Only writes: the shell reads the stored values once and passes them to `start`. No
//! web-sys: one tiny imported JS function instead of `window` lookups and `Storage` objects.

use alloc::string::String;

use wasm_bindgen::prelude::*;

/// The queue of unsent events, per site: survives the tab, so the next visit sends it.
/// (`npm/src/core.js` reads both keys back at start.)
pub const QUEUE_KEY: &str = "footfall:queue:";
/// The session and `identify()` user id: per tab, gone when the tab closes.
pub const SESSION_KEY: &str = "footfall:session:";

// A small JS function rather than a `catch` import: storage that throws (sandboxed
// iframe, private mode, quota) is handled where it happens, and the wasm needs none of the
// exception-passing machinery.
#[wasm_bindgen(inline_js = "
export function storage_set(local, key, value) {
  try {
    const s = local ? localStorage : sessionStorage
    value ? s.setItem(key, value) : s.removeItem(key)
    return true
  } catch (e) { return false }
}")]
extern "C" {
    fn storage_set(local: bool, key: &str, value: &str) -> bool;
}

#[derive(Clone, Copy)]
pub enum Area {
    /// `localStorage`
    Local,
    /// `sessionStorage`
    Session,
}

pub fn key(prefix: &str, site: &str) -> String {
    let mut k = String::from(prefix);
    k.push_str(site);
    k
}

/// Writes `value`, or removes the key for an empty one. Returns false when the browser
/// refused (no storage, quota).
pub fn set(area: Area, key: &str, value: &str) -> bool {
    storage_set(matches!(area, Area::Local), key, value)
}
