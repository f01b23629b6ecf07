use protocol::stats::ShareLink;
use yew::prelude::*;

use crate::state::{Editing, Load};

#[derive(Properties, PartialEq)]
pub struct SharePanelProps {
    pub site: AttrValue,
    /// `http://host:port`: share URLs are paths on this server.
    pub origin: AttrValue,
    pub links: Load<Vec<ShareLink>>,
    pub edit: Editing,
    /// The id of the link whose URL was just copied.
    pub copied: Option<AttrValue>,
    /// With the label typed (if any).
    pub on_create: Callback<Option<String>>,
    /// `(id, full URL)`.
    pub on_copy: Callback<(String, String)>,
    pub on_revoke: Callback<String>,
    pub on_close: Callback<()>,
}

/// Read-only links to this site's dashboard: create one with a label, copy its URL, revoke
/// it. Whoever opens the URL sees the numbers without signing in, and nothing else.
#[component]
pub fn SharePanel(props: &SharePanelProps) -> Html {
    let label = use_node_ref();
    let onsubmit = {
        let (label, on_create) = (label.clone(), props.on_create.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let input = label.cast::<web_sys::HtmlInputElement>();
            let text = input.as_ref().map(|i| i.value().trim().to_string());
            on_create.emit(text.filter(|t| !t.is_empty()));
            if let Some(i) = input {
                i.set_value("");
            }
        })
    };
    let link = |l: &ShareLink| {
        let url = format!("{}{}", props.origin, l.url);
        let copied = props.copied.as_deref() == Some(l.id.as_str());
        let name = l.label.clone().unwrap_or_else(|| "Unlabelled link".into());
        let (copy, id) = ((l.id.clone(), url.clone()), l.id.clone());
        html! {
            <li class="share-link" data-id={l.id.clone()}>
                <span class="share-label">{ name.clone() }</span>
                <span class="muted small">{ format!("created {}", l.created_at.get(..10).unwrap_or(&l.created_at)) }</span>
                <input class="share-url" readonly=true value={url} aria-label={format!("URL of {name}")}
                    onfocus={Callback::from(|e: FocusEvent| e.target_unchecked_into::<web_sys::HtmlInputElement>().select())} />
                <button type="button" class="share-copy" onclick={props.on_copy.reform(move |_: MouseEvent| copy.clone())}>
                    { if copied { "Copied" } else { "Copy" } }
                </button>
                <button type="button" class="link share-revoke" disabled={props.edit.busy}
                    aria-label={format!("Revoke {name}")}
                    onclick={props.on_revoke.reform(move |_: MouseEvent| id.clone())}>{ "Revoke" }</button>
            </li>
        }
    };
    let list = match &props.links {
        Load::Ready(links) if links.is_empty() => {
            html! { <p class="muted">{ "No share links yet." }</p> }
        }
        Load::Ready(links) => html! { <ul class="share-links">{ for links.iter().map(link) }</ul> },
        Load::Unavailable => {
            html! { <p class="muted">{ "Share links are not available on this server." }</p> }
        }
        Load::Failed(e) => {
            html! { <p class="error">{ format!("Share links could not be loaded: {e}") }</p> }
        }
        Load::Loading | Load::Idle => {
            html! { <p class="muted" aria-busy="true">{ "Loading…" }</p> }
        }
    };
    html! {
        <section class="card wide" id="share-panel" aria-labelledby="share-title">
            <header class="panel-head">
                <h2 id="share-title">{ "Share " }<code>{ props.site.clone() }</code>{ " read-only" }</h2>
                <button type="button" class="link" onclick={props.on_close.reform(|_: MouseEvent| ())}>{ "Close" }</button>
            </header>
            <p class="muted small">{ "Anyone with a link sees this site's numbers, live and history, without \
                signing in; they cannot see other sites or change anything. Revoking a link ends it at once." }</p>
            <form class="share-form" {onsubmit}>
                <label>{ "Label " }<input id="share-label" ref={label} placeholder="team, client…" maxlength="100" /></label>
                <button type="submit" id="share-create" disabled={props.edit.busy}>{ "Create link" }</button>
            </form>
            if let Some(e) = &props.edit.error {
                <p class="error" role="alert">{ format!("That did not work: {e}") }</p>
            }
            { list }
        </section>
    }
}
