//! The admin token lives in `sessionStorage`: it survives reloads but not closing the tab,
//! and is never written anywhere the server (or its logs) could see it. A share link's token
//! is never stored: it stays in the link's fragment.

use protocol::stats::Role;
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

/// Keeps session storage in step with the signed-in admin token: saved once the server
/// accepted it as the admin's, removed when signed out (not while a token is being checked).
#[hook]
pub fn use_session_token(token: Option<String>, role: Option<Role>, checking: bool) {
    use_effect_with((token, role, checking), |(token, role, checking)| {
        let Some(s) = storage() else { return };
        // A failing storage (quota, privacy mode) only costs the reload convenience.
        let _ = match (token, role) {
            (Some(t), Some(Role::Admin)) => s.set_item(KEY, t),
            (None, _) if !checking => s.remove_item(KEY),
            _ => Ok(()),
        };
    });
}
