//! Footfall's admin dashboard: a Yew (client-side rendered) app that `cargo xtask dist`
//! builds to static files (`dist/dashboard/`) which the processor serves at `/dashboard/`.
//!
//! It signs in with the admin token (kept in `sessionStorage`), shows live metrics from the
//! WebSocket gateway (`/ws`, see `docs/LIVE.md`) and history from the stats API
//! (`/api/stats/...`). It must not define wire types of its own for the live feed: those are
//! `protocol::live`'s, shared with the server.
//!
//! # Layout
//! - `main`: [`App`], the only component that owns state; it turns UI events into actions.
//! - `state`: `State`, `Action` and the reducer — pure, no `web_sys`, unit-tested on the host.
//! - `shape`: formatting, percentages, time buckets, chart scales, the reconnect schedule.
//! - `api`: every REST endpoint's URL and JSON shape, and the one `fetch` wrapper.
//! - `hooks`: `use_live_metrics` (WebSocket with backoff), `use_history`, `use_sites`,
//!   `use_registry` (the Sites view's registry and its changes), `use_session_token` — the
//!   browser side effects.
//! - `components`: presentational components, one per file, props above each.
//!
//! Everything compiles for the host too (so `cargo test --workspace` and clippy cover it);
//! browser APIs are only *called* at run time in the browser.

mod api;
mod components;
mod hooks;
mod shape;
mod state;

use yew::prelude::*;

use crate::api::{ApiError, Sites};
use crate::components::{HistoryView, LiveView, Login, SitesView, TopBar};
use crate::hooks::{
    change_registry, now_ms, origin, stored_token, tz_offset_min, use_history, use_live_metrics,
    use_registry, use_session_token, use_sites,
};
use crate::state::{Action, State, View};

/// What the login form says when the server refuses a token.
const WRONG_TOKEN: &str = "That token was not accepted. Use the admin token that \
    `footfall standalone` printed at start-up (or the one set with --admin-token / \
    FOOTFALL_ADMIN_TOKEN).";

/// Checks `token` by listing the sites (any stats call would do; this one we need anyway).
fn check_token(token: String, dispatch: UseReducerDispatcher<State>, restoring: bool) {
    yew::platform::spawn_local(async move {
        match api::get::<Sites>(&token, &api::sites_path()).await {
            Ok(r) => dispatch.dispatch(Action::LoggedIn {
                token,
                sites: r.sites,
            }),
            // A stored token that stopped working ends the session quietly.
            Err(ApiError::Unauthorized) if restoring => dispatch.dispatch(Action::LoggedOut(Some(
                "Your session ended: sign in again.".into(),
            ))),
            Err(ApiError::Unauthorized) => {
                dispatch.dispatch(Action::LoginFailed(WRONG_TOKEN.into()))
            }
            Err(ApiError::Network) => dispatch.dispatch(Action::LoginFailed(
                "Cannot reach the Footfall server. Is it running?".into(),
            )),
            Err(e) => dispatch.dispatch(Action::LoginFailed(format!("Sign-in failed: {e}"))),
        }
    });
}

#[component]
fn App() -> Html {
    let initial = use_memo((), |_| stored_token());
    let state = use_reducer({
        let initial = (*initial).clone();
        move || State::restoring(initial)
    });
    let dispatch = state.dispatcher();

    // A token from an earlier page load of this tab is checked once, at start.
    {
        let dispatch = dispatch.clone();
        use_effect_with((), move |_| {
            if let Some(token) = (*initial).clone() {
                check_token(token, dispatch, true);
            }
        });
    }
    use_session_token(state.token.clone());
    use_sites(state.token.clone(), dispatch.clone());
    use_registry(
        state.token.clone(),
        state.registry.version,
        dispatch.clone(),
    );
    use_live_metrics(state.token.clone(), state.site.clone(), dispatch.clone());
    use_history(
        state.token.clone(),
        state.site.clone(),
        state.range.clone(),
        state.view == View::History,
        dispatch.clone(),
    );

    let tz = tz_offset_min();
    let Some(site) = state.site.clone().filter(|_| state.token.is_some()) else {
        let on_submit = {
            let dispatch = dispatch.clone();
            Callback::from(move |token: String| {
                dispatch.dispatch(Action::LoginStarted);
                check_token(token, dispatch.clone(), false);
            })
        };
        return html! {
            <Login checking={state.login.checking} message={state.login.message.clone().map(AttrValue::from)}
                {on_submit} />
        };
    };

    let make = |f: fn(String) -> Action| {
        let dispatch = dispatch.clone();
        Callback::from(move |v: String| dispatch.dispatch(f(v)))
    };
    let on_view = {
        let dispatch = dispatch.clone();
        Callback::from(move |v: View| dispatch.dispatch(Action::ShowView(v)))
    };
    let on_logout = {
        let dispatch = dispatch.clone();
        Callback::from(move |()| dispatch.dispatch(Action::LoggedOut(None)))
    };
    let on_range = {
        let dispatch = dispatch.clone();
        Callback::from(move |r| dispatch.dispatch(Action::SetRange(r)))
    };
    let registry_change = |add: bool| {
        let (dispatch, token) = (dispatch.clone(), state.token.clone());
        Callback::from(move |site: String| {
            if let Some(token) = token.clone() {
                change_registry(token, site, add, dispatch.clone());
            }
        })
    };
    let sites: Vec<AttrValue> = state
        .sites
        .iter()
        .map(|s| AttrValue::from(s.site.clone()))
        .collect();
    html! {
        <>
            <TopBar {sites} site={Some(AttrValue::from(site.clone()))} view={state.view} conn={state.conn}
                manage_sites={state.can_manage_sites()} on_site={make(Action::SelectSite)} {on_view} {on_logout} />
            if state.view == View::Sites {
                <SitesView registry={state.registry.clone()} on_add={registry_change(true)}
                    on_remove={registry_change(false)} />
            } else if state.view == View::Live {
                <LiveView site={site} live={state.live.clone()} feed={state.feed.clone()} at={state.live_at}
                    empty={state.site_is_empty()} origin={origin()} tz_offset={tz} />
            } else {
                <HistoryView range={state.range.clone()} history={state.history.clone()} tz_offset={tz}
                    today={shape::format_date(now_ms(), tz)} {on_range} />
            }
        </>
    }
}

fn main() {
    // Panics (there should be none) go to the console with a message instead of
    // "unreachable executed".
    yew::Renderer::<App>::new().render();
}
