use yew::prelude::*;

use crate::shape::{format_count, group_thousands};

#[derive(Properties, PartialEq)]
pub struct StatCardProps {
    pub id: AttrValue,
    pub label: AttrValue,
    pub value: u64,
    #[prop_or_default]
    pub hint: Option<AttrValue>,
}

/// One big number. The exact value is in `data-value` and the tooltip; the text may be
/// compact ("12.3k").
#[component]
pub fn StatCard(props: &StatCardProps) -> Html {
    html! {
        <section class="card stat" aria-labelledby={format!("{}-label", props.id)}>
            <h2 id={format!("{}-label", props.id)}>{ props.label.clone() }</h2>
            <p id={props.id.clone()} class="number" data-value={props.value.to_string()}
                title={group_thousands(props.value)}>{ format_count(props.value) }</p>
            if let Some(hint) = &props.hint {
                <p class="muted small">{ hint.clone() }</p>
            }
        </section>
    }
}
