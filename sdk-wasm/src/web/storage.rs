//! localStorage / sessionStorage access that never throws: storage is missing in sandboxed
//! iframes and some private modes, and full when the quota is reached. Then the tracker
//! simply keeps its state in memory.
//!
//! The imports call `localStorage.getItem(...)` directly (no `window` object, no web-sys):
//! six tiny imports instead of the global-object lookup machinery.

use alloc::string::String;

use wasm_bindgen::prelude::*;

/// The queue of unsent events, per site: survives the tab, so the next visit sends it.
pub const QUEUE_KEY: &str = "footfall:queue:";
/// The session and `identify()` user id: per tab, gone when the tab closes.
pub const SESSION_KEY: &str = "footfall:session:";
/// `localStorage.footfall_ignore = "true"` excludes this browser (a site owner's own
/// visits), the same switch Plausible documents.
pub const OPT_OUT_KEY: &str = "footfall_ignore";

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = localStorage, js_name = getItem)]
    fn local_get(key: &str) -> Result<Option<String>, JsValue>;
    #[wasm_bindgen(catch, js_namespace = localStorage, js_name = setItem)]
    fn local_set(key: &str, value: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(catch, js_namespace = localStorage, js_name = removeItem)]
    fn local_remove(key: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(catch, js_namespace = sessionStorage, js_name = getItem)]
    fn session_get(key: &str) -> Result<Option<String>, JsValue>;
    #[wasm_bindgen(catch, js_namespace = sessionStorage, js_name = setItem)]
    fn session_set(key: &str, value: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(catch, js_namespace = sessionStorage, js_name = removeItem)]
    fn session_remove(key: &str) -> Result<(), JsValue>;
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

pub fn get(area: Area, key: &str) -> Option<String> {
    match area {
        Area::Local => local_get(key),
        Area::Session => session_get(key),
    }
    .ok()
    .flatten()
}

/// Writes `value`, or removes the key for an empty one. Returns false when the browser
/// refused (no storage, quota).
pub fn set(area: Area, key: &str, value: &str) -> bool {
    match (area, value.is_empty()) {
        (Area::Local, true) => local_remove(key),
        (Area::Local, false) => local_set(key, value),
        (Area::Session, true) => session_remove(key),
        (Area::Session, false) => session_set(key, value),
    }
    .is_ok()
}
