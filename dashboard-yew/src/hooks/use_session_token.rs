//! The admin token lives in `sessionStorage`: it survives reloads but not closing the tab,
//! and is never written anywhere the server (or its logs) could see it.

use yew::prelude::*;

const KEY: &str = "footfall.adminToken";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}

/// The token a previous page load of this tab saved, if any (storage may be disabled).
pub fn stored_token() -> Option<String> {
    storage()?
        .get_item(KEY)
        .ok()
        .flatten()
        .filter(|t| !t.trim().is_empty())
}

/// Keeps session storage in step with the logged-in token (removed on log out).
#[hook]
pub fn use_session_token(token: Option<String>) {
    use_effect_with(token, |token| {
        if let Some(s) = storage() {
            // A failing storage (quota, privacy mode) only costs the reload convenience.
            let _ = match token {
                Some(t) => s.set_item(KEY, t),
                None => s.remove_item(KEY),
            };
        }
    });
}
