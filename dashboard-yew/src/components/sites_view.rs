use yew::prelude::*;

use crate::state::{Load, Registry};

#[derive(Properties, PartialEq)]
pub struct SitesViewProps {
    pub registry: Registry,
    pub on_add: Callback<String>,
    pub on_remove: Callback<String>,
}

/// The site registry: events are accepted only for the sites listed here. Add one by its
/// host name (`example.com`), remove one (its data stays).
#[component]
pub fn SitesView(props: &SitesViewProps) -> Html {
    let input = use_node_ref();
    let onsubmit = {
        let (input, on_add) = (input.clone(), props.on_add.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if let Some(field) = input.cast::<web_sys::HtmlInputElement>() {
                let site = field.value().trim().to_string();
                if !site.is_empty() {
                    on_add.emit(site);
                    field.set_value("");
                }
            }
        })
    };
    let registry = &props.registry;
    let list = match &registry.sites {
        Load::Ready(sites) => html! {
            <ul id="registry" class="registry">
                { for sites.iter().map(|s| {
                    let site = s.site.clone();
                    let onclick = props.on_remove.reform(move |_: MouseEvent| site.clone());
                    html! {
                        <li data-site={s.site.clone()}>
                            <span class="key">{ s.site.clone() }</span>
                            <span class="muted small">{ format!("added {}", s.added_at.get(..10).unwrap_or(&s.added_at)) }</span>
                            <button class="remove" aria-label={format!("Remove {}", s.site)}
                                disabled={registry.edit.busy} {onclick}>{ "Remove" }</button>
                        </li>
                    }
                }) }
            </ul>
        },
        Load::Failed(e) => html! { <p class="error">{ format!("Cannot read the sites: {e}") }</p> },
        _ => html! { <p class="muted">{ "Loading…" }</p> },
    };
    html! {
        <main class="view">
            <section class="card" aria-labelledby="sites-title">
                <h2 id="sites-title">{ "Sites" }</h2>
                <p class="muted small">
                    { "Events are accepted only for these sites. Removing a site keeps its data." }
                </p>
                <form class="add-site" {onsubmit}>
                    <label for="new-site" class="visually-hidden">{ "Site to add" }</label>
                    <input id="new-site" ref={input} placeholder="example.com" autocomplete="off"
                        disabled={registry.edit.busy} />
                    <button id="add-site" type="submit" disabled={registry.edit.busy}>{ "Add site" }</button>
                </form>
                if let Some(error) = &registry.edit.error {
                    <p id="sites-error" class="error" role="alert">{ error.clone() }</p>
                }
                { list }
            </section>
        </main>
    }
}
