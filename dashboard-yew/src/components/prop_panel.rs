use protocol::stats::Breakdown;
use yew::prelude::*;

use crate::components::BreakdownTable;
use crate::shape::with_shares;
use crate::state::Load;

#[derive(Properties, PartialEq)]
pub struct PropPanelProps {
    /// The property broken down, if one is chosen.
    pub prop: Option<AttrValue>,
    pub load: Load<Breakdown>,
    /// Property names to offer (those the site was seen to send).
    pub suggestions: Vec<AttrValue>,
    pub on_prop: Callback<Option<String>>,
    pub on_pick: Callback<String>,
    pub on_export: Callback<()>,
}

/// Events by the value of one custom property (`plan` → pro, free, …): a name field with
/// suggestions, then the breakdown table.
#[component]
pub fn PropPanel(props: &PropPanelProps) -> Html {
    let input = use_node_ref();
    let onsubmit = {
        let (input, on_prop) = (input.clone(), props.on_prop.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let name = input
                .cast::<web_sys::HtmlInputElement>()
                .map(|i| i.value().trim().to_string());
            on_prop.emit(name.filter(|n| !n.is_empty()));
        })
    };
    let (rows, empty) = match (&props.prop, &props.load) {
        (None, _) => (
            vec![],
            "Pick a property sent with events (footfall.track(\"signup\", { plan: \"pro\" }))."
                .to_string(),
        ),
        (Some(_), Load::Ready(b)) => (
            with_shares(
                b.rows.iter().map(|r| (r.value.as_str(), r.count)),
                Some(b.total),
            ),
            "No events carry this property in this range.".to_string(),
        ),
        (Some(_), Load::Failed(e)) => (vec![], format!("Could not be loaded: {e}")),
        (Some(_), Load::Unavailable) => (vec![], "Not available on this server.".into()),
        (Some(_), _) => (vec![], "Loading…".into()),
    };
    let key_label = props.prop.clone().unwrap_or(AttrValue::Static("Value"));
    html! {
        <BreakdownTable id="breakdown-prop" title="Custom properties" {key_label} count_label="Events"
            {rows} empty={empty}
            on_pick={props.prop.is_some().then(|| props.on_pick.clone())}
            on_export={props.prop.is_some().then(|| props.on_export.clone())}>
            <form class="prop-form" {onsubmit}>
                <label for="prop-name" class="visually-hidden">{ "Property name" }</label>
                <input id="prop-name" ref={input} list="prop-names" placeholder="property, e.g. plan"
                    value={props.prop.clone().unwrap_or_default()} maxlength="100" />
                <datalist id="prop-names">
                    { for props.suggestions.iter().map(|s| html! { <option value={s.clone()} /> }) }
                </datalist>
                <button type="submit" id="prop-show">{ "Show" }</button>
            </form>
        </BreakdownTable>
    }
}
