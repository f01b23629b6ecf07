//! The admin's edits that go to the server: goals (add, delete), share links (list,
//! create, copy, revoke) and the site registry (list, add, remove), plus downloads. Each returns the callbacks the components emit;
//! the outcome comes back as actions.

use protocol::stats::{Goal, GoalKind, NewGoal, NewShareLink, ShareLink, ShareLinks};
use yew::prelude::*;

use crate::api::{self, AddSite, ApiError, Export, Scope, SiteList};
use crate::shape::export_filename;
use crate::state::{Action, State};

/// One edit: `started`, then the call in a task, then `done` with its outcome.
fn edit(
    dispatch: &UseReducerDispatcher<State>,
    started: Action,
    done: fn(Result<(), ApiError>) -> Action,
    call: impl std::future::Future<Output = Result<(), ApiError>> + 'static,
) {
    let dispatch = dispatch.clone();
    dispatch.dispatch(started);
    yew::platform::spawn_local(async move { dispatch.dispatch(done(call.await)) });
}

/// What the goal form and the delete buttons call.
pub struct GoalEditor {
    pub add: Callback<(GoalKind, String)>,
    pub delete: Callback<Goal>,
}

#[hook]
pub fn use_goal_editor(
    token: Option<String>,
    site: Option<String>,
    dispatch: UseReducerDispatcher<State>,
) -> GoalEditor {
    let creds = token.zip(site);
    let add = {
        let (creds, dispatch) = (creds.clone(), dispatch.clone());
        Callback::from(move |(kind, value): (GoalKind, String)| {
            let Some((token, site)) = creds.clone() else {
                return;
            };
            edit(
                &dispatch,
                Action::GoalEditStarted,
                Action::GoalEdited,
                async move {
                    let goal = NewGoal { site, kind, value };
                    api::post::<Goal>(&token, api::GOALS_PATH, Some(&goal))
                        .await
                        .map(|_| ())
                },
            );
        })
    };
    let delete = Callback::from(move |goal: Goal| {
        let Some((token, site)) = creds.clone() else {
            return;
        };
        edit(
            &dispatch,
            Action::GoalEditStarted,
            Action::GoalEdited,
            async move { api::delete(&token, &api::goal_path(&goal.id, &site)).await },
        );
    });
    GoalEditor { add, delete }
}

/// What the share panel calls.
pub struct ShareEditor {
    pub create: Callback<Option<String>>,
    pub copy: Callback<(String, String)>,
    pub revoke: Callback<String>,
}

/// Loads the site's share links while the panel is open (again after every change).
#[hook]
pub fn use_share_links(
    token: Option<String>,
    site: Option<String>,
    open: bool,
    rev: u32,
    dispatch: UseReducerDispatcher<State>,
) -> ShareEditor {
    let creds = token.zip(site);
    {
        let dispatch = dispatch.clone();
        use_effect_with((creds.clone(), open, rev), move |(creds, open, _)| {
            if let (Some((token, site)), true) = (creds.clone(), *open) {
                yew::platform::spawn_local(async move {
                    let r = api::get::<ShareLinks>(&token, &api::shares_path(&site)).await;
                    dispatch.dispatch(Action::SharesLoaded(r.map(|l| l.links)));
                });
            }
        });
    }
    let create = {
        let (creds, dispatch) = (creds.clone(), dispatch.clone());
        Callback::from(move |label: Option<String>| {
            let Some((token, site)) = creds.clone() else {
                return;
            };
            edit(
                &dispatch,
                Action::ShareEditStarted,
                Action::ShareEdited,
                async move {
                    let body = NewShareLink { site, label };
                    api::post::<ShareLink>(&token, api::SHARES_PATH, Some(&body))
                        .await
                        .map(|_| ())
                },
            );
        })
    };
    let revoke = {
        let dispatch = dispatch.clone();
        Callback::from(move |id: String| {
            let Some((token, _)) = creds.clone() else {
                return;
            };
            edit(
                &dispatch,
                Action::ShareEditStarted,
                Action::ShareEdited,
                async move { api::delete(&token, &api::share_path(&id)).await },
            );
        })
    };
    let copy = Callback::from(move |(id, url): (String, String)| {
        let dispatch = dispatch.clone();
        let Some(clipboard) = web_sys::window().map(|w| w.navigator().clipboard()) else {
            return;
        };
        yew::platform::spawn_local(async move {
            let copied = wasm_bindgen_futures::JsFuture::from(clipboard.write_text(&url)).await;
            // Without clipboard access (an insecure origin) the URL stays selectable.
            dispatch.dispatch(Action::Copied(copied.ok().map(|_| id)));
        });
    });
    ShareEditor {
        create,
        copy,
        revoke,
    }
}

/// What the Sites view calls.
pub struct RegistryEditor {
    pub add: Callback<String>,
    pub remove: Callback<String>,
}

/// Reads the site registry once signed in as the admin, and again after every change.
#[hook]
pub fn use_site_registry(
    token: Option<String>,
    rev: u32,
    dispatch: UseReducerDispatcher<State>,
) -> RegistryEditor {
    {
        let dispatch = dispatch.clone();
        use_effect_with((token.clone(), rev), move |(token, _)| {
            if let Some(token) = token.clone() {
                yew::platform::spawn_local(async move {
                    let r = api::get::<SiteList>(&token, api::REGISTRY_PATH).await;
                    dispatch.dispatch(Action::RegistryLoaded(r.map(|l| l.sites)));
                });
            }
        });
    }
    let add = {
        let (token, dispatch) = (token.clone(), dispatch.clone());
        Callback::from(move |site: String| {
            let Some(token) = token.clone() else {
                return;
            };
            edit(
                &dispatch,
                Action::RegistryEditStarted,
                Action::RegistryEdited,
                async move {
                    let body = AddSite { site };
                    api::post::<serde_json::Value>(&token, api::REGISTRY_PATH, Some(&body))
                        .await
                        .map(|_| ())
                },
            );
        })
    };
    let remove = Callback::from(move |site: String| {
        let Some(token) = token.clone() else {
            return;
        };
        edit(
            &dispatch,
            Action::RegistryEditStarted,
            Action::RegistryEdited,
            async move { api::delete(&token, &api::registry_site_path(&site)).await },
        );
    });
    RegistryEditor { add, remove }
}

/// Downloads `what` for the shown range and filters; a failure becomes a notice.
pub fn export(
    token: String,
    scope: Scope<'_>,
    what: Export,
    tz_offset_min: i32,
    dispatch: UseReducerDispatcher<State>,
) {
    let path = what.path(scope, tz_offset_min);
    let filename = export_filename(
        scope.site,
        &what.name(),
        scope.span.from,
        scope.span.to,
        tz_offset_min,
        what.extension(),
    );
    yew::platform::spawn_local(async move {
        let notice = match api::download(&token, &path, &filename).await {
            Ok(()) => None,
            Err(ApiError::NotFound) => Some("This export is not available on this server.".into()),
            Err(e) => Some(format!("The download failed: {e}")),
        };
        dispatch.dispatch(Action::Notice(notice));
    });
}
