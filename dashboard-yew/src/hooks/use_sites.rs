//! Refreshes the site list while logged in, so a site that starts sending data shows up in
//! the selector without a reload.

use gloo_timers::callback::Interval;
use yew::prelude::*;

use crate::api::{self, ApiError, Sites};
use crate::state::{Action, State};

/// Often enough that a fresh install finds its first site quickly; the query is cheap.
const REFRESH_MS: u32 = 15_000;

#[hook]
pub fn use_sites(token: Option<String>, dispatch: UseReducerDispatcher<State>) {
    use_effect_with(token, move |token| {
        let interval = token.clone().map(|token| {
            Interval::new(REFRESH_MS, move || {
                let token = token.clone();
                let dispatch = dispatch.clone();
                yew::platform::spawn_local(async move {
                    match api::get::<Sites>(&token, &api::sites_path()).await {
                        Ok(r) => dispatch.dispatch(Action::SitesLoaded(r.sites)),
                        Err(ApiError::Unauthorized) => {
                            dispatch.dispatch(Action::LoggedOut(Some(TOKEN_REFUSED.into())))
                        }
                        // Transient: the live indicator already tells the user.
                        Err(_) => {}
                    }
                });
            })
        });
        move || drop(interval)
    });
}

/// Shown when a credential that used to work is refused (the admin token rotated on the
/// server, or the share link revoked).
pub const TOKEN_REFUSED: &str =
    "The server no longer accepts this token or share link (was it changed or revoked?).";
