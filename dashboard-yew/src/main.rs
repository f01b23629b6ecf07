//! Footfall's admin dashboard: a Yew (client-side rendered) app that `cargo xtask dist`
//! builds to static files (`dist/dashboard/`) which the processor serves at `/dashboard/`.
//!
//! It signs in with the admin token (kept in `sessionStorage`) or opens through a share link
//! (`#share=<token>`, read-only, one site), shows live metrics from the WebSocket gateway
//! (`/ws`, see `docs/LIVE.md`) and history from the stats API (`/api/stats/...`, see
//! `docs/API.md`) with filters, comparison, goals and CSV exports. It defines no wire types:
//! those are `protocol::live`'s and `protocol::stats`'s, shared with the server.
//!
//! # Layout
//! - `main`: [`App`], the only component that owns state; it turns UI events into actions.
//! - `state`: `State`, `Action` and the reducer — pure, no `web_sys`, unit-tested on the host.
//! - `state::url`: what of the state lives in the URL (bookmarks, shared views), pure.
//! - `metric`: the six top-card figures: reading, formatting, which way is good.
//! - `shape`: formatting, percentages and changes, time buckets, chart scales, the reconnect
//!   schedule.
//! - `api`: every REST endpoint's URL and JSON shape, and the one `fetch` wrapper.
//! - `hooks`: `use_live_metrics` (WebSocket with backoff), `use_history`, `use_sites`,
//!   `use_session_token`, `use_url_sync`, the admin's edits (`use_admin`: goals, share
//!   links, the site registry) — the browser side effects.
//! - `components`: presentational components, one per file, props above each.
//!
//! Everything compiles for the host too (so `cargo test --workspace` and clippy cover it);
//! browser APIs are only *called* at run time in the browser.

mod api;
mod components;
mod hooks;
mod metric;
mod shape;
mod state;

use yew::prelude::*;

use crate::api::{Access, ApiError, Export, Role, Scope, Sites};
use crate::components::{HistoryView, LiveView, Login, SharePanel, SitesView, TopBar};
use crate::hooks::{
    export, location, now_ms, origin, stored_token, tz_offset_min, use_goal_editor, use_history,
    use_live_metrics, use_session_token, use_share_links, use_site_registry, use_sites,
    use_url_sync, HistoryQuery,
};
use crate::state::{share_token, Action, State, UrlState, View};

/// What the login form says when the server refuses a token.
const WRONG_TOKEN: &str = "That token was not accepted. Use the admin token that \
    `footfall standalone` printed at start-up (or the one set with --admin-token / \
    FOOTFALL_ADMIN_TOKEN).";

/// What a refused share link says.
const LINK_REFUSED: &str = "This share link is not valid (any more): it may have been \
    revoked. Ask whoever sent it for a new one, or sign in with the admin token.";

/// Asks the server what `token` may do (`GET /api/access`), then, for the admin, lists the
/// sites. A share link reads one site and gets no list.
fn check_token(
    token: String,
    dispatch: UseReducerDispatcher<State>,
    restoring: bool,
    shared: bool,
) {
    yew::platform::spawn_local(async move {
        let signed_in = async {
            let access = match api::get::<Access>(&token, api::ACCESS_PATH).await {
                // An older server without `/api/access` knows only the admin token.
                Err(ApiError::NotFound) => Access {
                    role: Role::Admin,
                    site: None,
                },
                r => r?,
            };
            let sites = match access.role {
                Role::Share => Vec::new(),
                Role::Admin => api::get::<Sites>(&token, &api::sites_path()).await?.sites,
            };
            Ok::<_, ApiError>((access, sites))
        };
        let action = match signed_in.await {
            Ok((access, sites)) => Action::LoggedIn {
                token,
                access,
                sites,
            },
            Err(ApiError::Unauthorized) if shared => Action::LoggedOut(Some(LINK_REFUSED.into())),
            // A stored token that stopped working ends the session quietly.
            Err(ApiError::Unauthorized) if restoring => {
                Action::LoggedOut(Some("Your session ended: sign in again.".into()))
            }
            Err(ApiError::Unauthorized) => Action::LoginFailed(WRONG_TOKEN.into()),
            Err(ApiError::Network) => {
                Action::LoginFailed("Cannot reach the Footfall server. Is it running?".into())
            }
            Err(e) => Action::LoginFailed(format!("Sign-in failed: {e}")),
        };
        dispatch.dispatch(action);
    });
}

/// A UI event that maps to one action.
fn on<T: 'static>(dispatch: &UseReducerDispatcher<State>, f: fn(T) -> Action) -> Callback<T> {
    let dispatch = dispatch.clone();
    Callback::from(move |v| dispatch.dispatch(f(v)))
}

#[component]
fn App() -> Html {
    // Read once: the bookmarked view and a share link's token.
    let start = use_memo((), |_| {
        let (search, hash) = location();
        (UrlState::parse(&search), share_token(&hash))
    });
    let state = use_reducer({
        let start = start.clone();
        move || {
            let (url, share) = (*start).clone();
            State::restoring(share.or_else(stored_token), url)
        }
    });
    let dispatch = state.dispatcher();

    // A token from the share link or an earlier page load of this tab is checked once.
    {
        let dispatch = dispatch.clone();
        let start = start.clone();
        use_effect_with((), move |_| {
            let shared = start.1.is_some();
            if let Some(token) = start.1.clone().or_else(stored_token) {
                check_token(token, dispatch, true, shared);
            }
        });
    }
    let admin_token = state.token.clone().filter(|_| state.is_admin());
    use_session_token(state.token.clone(), state.role, state.login.checking);
    use_sites(admin_token.clone(), dispatch.clone());
    let registry = use_site_registry(admin_token.clone(), state.registry.rev, dispatch.clone());
    use_live_metrics(
        state.token.clone(),
        state.site.clone(),
        state.is_shared(),
        dispatch.clone(),
    );
    use_history(HistoryQuery::of(&state), dispatch.clone());
    use_url_sync(state.token.is_some().then(|| state.url_state()));
    let goals = use_goal_editor(admin_token.clone(), state.site.clone(), dispatch.clone());
    let shares = use_share_links(
        admin_token,
        state.site.clone(),
        state.shares.open,
        state.shares.rev,
        dispatch.clone(),
    );

    let tz = tz_offset_min();
    let Some(site) = state.site.clone().filter(|_| state.token.is_some()) else {
        let on_submit = {
            let dispatch = dispatch.clone();
            Callback::from(move |token: String| {
                dispatch.dispatch(Action::LoginStarted);
                check_token(token, dispatch.clone(), false, false);
            })
        };
        return html! {
            <Login checking={state.login.checking} message={state.login.message.clone().map(AttrValue::from)}
                {on_submit} />
        };
    };

    let on_unit = |a: Action| {
        let dispatch = dispatch.clone();
        Callback::from(move |()| dispatch.dispatch(a.clone()))
    };
    let on_export = {
        let (state, dispatch) = (state.clone(), dispatch.clone());
        Callback::from(move |what: Export| {
            let (Some(token), Some(site), Some(span)) = (
                state.token.clone(),
                state.site.as_deref(),
                state.history.span,
            ) else {
                return dispatch.dispatch(Action::Notice(Some("Pick a valid range first.".into())));
            };
            let scope = Scope {
                site,
                span,
                filters: &state.filters,
            };
            export(token, scope, what, tz, dispatch.clone());
        })
    };
    let sites: Vec<AttrValue> = state
        .sites
        .iter()
        .map(|s| AttrValue::from(s.site.clone()))
        .collect();
    let share_panel = (state.shares.open && state.is_admin()).then(|| {
        html! {
            <SharePanel site={site.clone()} origin={origin()} links={state.shares.links.clone()}
                edit={state.shares.edit.clone()} copied={state.shares.copied.clone().map(AttrValue::from)}
                on_create={shares.create} on_copy={shares.copy} on_revoke={shares.revoke}
                on_close={on_unit(Action::OpenShares(false))} />
        }
    });
    html! {
        <>
            <TopBar {sites} site={Some(AttrValue::from(site.clone()))} view={state.view} conn={state.conn}
                manage_sites={state.can_manage_sites()} read_only={state.is_shared()}
                on_site={on(&dispatch, Action::SelectSite)} on_view={on(&dispatch, Action::ShowView)}
                on_logout={on_unit(Action::LoggedOut(None))} />
            if let Some(notice) = state.notice.clone() {
                <p class="notice error" role="alert">{ notice }
                    <button type="button" class="link" onclick={on_unit(Action::Notice(None)).reform(|_: MouseEvent| ())}>{ "Dismiss" }</button>
                </p>
            }
            if state.view == View::Sites && state.can_manage_sites() {
                <SitesView registry={state.registry.clone()} on_add={registry.add}
                    on_remove={registry.remove} />
            } else if state.view == View::Live {
                <LiveView site={site} live={state.live.clone()} feed={state.feed.clone()} at={state.live_at}
                    empty={state.site_is_empty()} origin={origin()} tz_offset={tz}
                    on_pick={on(&dispatch, Action::FilterFromLive)} />
            } else {
                <HistoryView range={state.range.clone()} compare={state.compare} filters={state.filters.clone()}
                    metric={state.metric} prop={state.prop.clone().map(AttrValue::from)}
                    history={state.history.clone()} tz_offset={tz} today={shape::format_date(now_ms(), tz)}
                    admin={state.is_admin()} goal_edit={state.goal_edit.clone()}
                    on_range={on(&dispatch, Action::SetRange)} on_compare={on(&dispatch, Action::SetCompare)} on_metric={on(&dispatch, Action::SetMetric)}
                    on_filter={on(&dispatch, Action::AddFilter)} on_remove_filter={on(&dispatch, Action::RemoveFilter)}
                    on_invert_filter={on(&dispatch, Action::InvertFilter)} on_clear_filters={on_unit(Action::ClearFilters)}
                    on_prop={on(&dispatch, Action::SetProp)} {on_export} on_add_goal={goals.add} on_delete_goal={goals.delete}
                    on_refresh={on_unit(Action::Refresh)} on_share={on_unit(Action::OpenShares(true))}>
                    { for share_panel }
                </HistoryView>
            }
        </>
    }
}

fn main() {
    yew::Renderer::<App>::new().render();
}
