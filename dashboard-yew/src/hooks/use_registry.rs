//! Reads the site registry once signed in and again after every change made in the Sites
//! view (`version`). A credential that may not manage sites gets a 401 here, which hides the
//! view (see `State::can_manage_sites`).

use yew::prelude::*;

use crate::api::{self, SiteList};
use crate::state::{Action, State};

#[hook]
pub fn use_registry(token: Option<String>, version: u32, dispatch: UseReducerDispatcher<State>) {
    use_effect_with((token, version), move |(token, _)| {
        if let Some(token) = token.clone() {
            yew::platform::spawn_local(async move {
                let r = api::get::<SiteList>(&token, api::REGISTRY_PATH).await;
                dispatch.dispatch(Action::RegistryLoaded(r.map(|list| list.sites)));
            });
        }
    });
}

/// Adds (`add`) or removes a site, then reports the answer.
pub fn change_registry(
    token: String,
    site: String,
    add: bool,
    dispatch: UseReducerDispatcher<State>,
) {
    dispatch.dispatch(Action::RegistryChangeStarted);
    yew::platform::spawn_local(async move {
        let r = if add {
            api::post_json(&token, api::REGISTRY_PATH, &api::AddSite { site }).await
        } else {
            api::delete(&token, &api::registry_site_path(&site)).await
        };
        dispatch.dispatch(Action::RegistryChanged(r));
    });
}
