//! Keeps the address bar in step with what is shown (site, view, range, filters, comparison,
//! chart metric, property), so the URL can be bookmarked or sent and opens the same view.
//! `replaceState`, not `pushState`: every filter click would otherwise be a Back step. The
//! fragment (a share link's token) is kept as it is.

use yew::prelude::*;

use crate::state::UrlState;

/// The query string and fragment the page was opened with.
pub fn location() -> (String, String) {
    let loc = web_sys::window().map(|w| w.location());
    let get = |f: fn(&web_sys::Location) -> Result<String, wasm_bindgen::JsValue>| {
        loc.as_ref().and_then(|l| f(l).ok()).unwrap_or_default()
    };
    (get(web_sys::Location::search), get(web_sys::Location::hash))
}

/// Writes `url` (when signed in; the login form leaves the URL alone so a bookmark survives
/// it) into the address bar.
#[hook]
pub fn use_url_sync(url: Option<UrlState>) {
    use_effect_with(url, |url| {
        let Some(url) = url else { return };
        let Some(window) = web_sys::window() else {
            return;
        };
        let (search, hash) = location();
        let query = url.to_query();
        if query == search {
            return;
        }
        let path = window.location().pathname().unwrap_or_default();
        if let Ok(history) = window.history() {
            // A browser refusing (sandboxed frames) only costs the bookmark.
            let _ = history.replace_state_with_url(
                &wasm_bindgen::JsValue::NULL,
                "",
                Some(&format!("{path}{query}{hash}")),
            );
        }
    });
}
