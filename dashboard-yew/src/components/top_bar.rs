use yew::prelude::*;

use crate::components::Status;
use crate::state::{Conn, View};

#[derive(Properties, PartialEq)]
pub struct TopBarProps {
    pub sites: Vec<AttrValue>,
    pub site: Option<AttrValue>,
    pub view: View,
    pub conn: Conn,
    /// Offer the Sites view (admins).
    pub manage_sites: bool,
    /// Opened through a share link: the site is fixed and there is no log-out.
    pub read_only: bool,
    pub on_site: Callback<String>,
    pub on_view: Callback<View>,
    pub on_logout: Callback<()>,
}

/// Brand, site selector, Live/History (and, for admins, Sites) tabs, connection status and
/// log out. A share link shows its one site as text and says it is read-only.
#[component]
pub fn TopBar(props: &TopBarProps) -> Html {
    let on_site = props.on_site.reform(|e: Event| {
        e.target_unchecked_into::<web_sys::HtmlSelectElement>()
            .value()
    });
    let tab = |view: View, label: &'static str, id: &'static str| {
        let selected = props.view == view;
        let onclick = props.on_view.reform(move |_: MouseEvent| view);
        html! {
            <button {id} role="tab" aria-selected={selected.to_string()}
                class={classes!("tab", selected.then_some("active"))} {onclick}>{ label }</button>
        }
    };
    // The chosen site is listed even before the server knows it (no data yet).
    let mut options = props.sites.clone();
    if let Some(site) = &props.site {
        if !options.contains(site) {
            options.insert(0, site.clone());
        }
    }
    html! {
        <header class="top">
            <strong class="brand">{ "Footfall" }</strong>
            if props.read_only {
                <span class="site" id="site-name">{ props.site.clone().unwrap_or_default() }</span>
                <span class="badge" id="read-only">{ "Read-only" }</span>
            } else {
                <label class="site">
                    <span class="visually-hidden">{ "Site" }</span>
                    <select id="site" aria-label="Site" onchange={on_site}>
                        { for options.iter().map(|s| html! {
                            <option value={s.clone()} selected={props.site.as_ref() == Some(s)}>{ s.clone() }</option>
                        }) }
                    </select>
                </label>
            }
            <nav role="tablist" aria-label="View">
                { tab(View::Live, "Live", "tab-live") }
                { tab(View::History, "History", "tab-history") }
                if props.manage_sites {
                    { tab(View::Sites, "Sites", "tab-sites") }
                }
            </nav>
            <Status conn={props.conn} />
            if !props.read_only {
                <button id="logout" class="link" onclick={props.on_logout.reform(|_: MouseEvent| ())}>
                    { "Log out" }
                </button>
            }
        </header>
    }
}
