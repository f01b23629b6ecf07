use protocol::stats::{Field, Filter, FilterOp};
use yew::prelude::*;

use crate::api::field_label;

#[derive(Properties, PartialEq)]
pub struct FilterBarProps {
    pub filters: Vec<Filter>,
    pub on_remove: Callback<Field>,
    pub on_invert: Callback<Field>,
    pub on_clear: Callback<()>,
}

/// The active filters as chips: "Page [is] /pricing ×". The operator is a toggle (is / is
/// not), × removes the chip. Nothing at all when no filter is set.
#[component]
pub fn FilterBar(props: &FilterBarProps) -> Html {
    if props.filters.is_empty() {
        return html! {};
    }
    let chip = |f: &Filter| {
        let label = field_label(&f.field);
        let (op, other) = match f.op {
            FilterOp::Is => ("is", "is not"),
            FilterOp::IsNot => ("is not", "is"),
        };
        let sentence = format!("{label} {op} {}", f.value);
        let (a, b) = (f.field.clone(), f.field.clone());
        html! {
            <li class={classes!("chip", (f.op == FilterOp::IsNot).then_some("negated"))} data-filter={f.to_param()}>
                <span class="field">{ label.clone() }</span>
                <button type="button" class="op" aria-label={format!("{sentence}: change to {other}")}
                    onclick={props.on_invert.reform(move |_: MouseEvent| a.clone())}>{ op }</button>
                <span class="value">{ f.value.clone() }</span>
                <button type="button" class="remove" aria-label={format!("Remove filter {sentence}")}
                    onclick={props.on_remove.reform(move |_: MouseEvent| b.clone())}>{ "×" }</button>
            </li>
        }
    };
    html! {
        <section class="filters" aria-label="Filters">
            <ul id="filters">{ for props.filters.iter().map(chip) }</ul>
            if props.filters.len() > 1 {
                <button type="button" class="link" id="filters-clear"
                    onclick={props.on_clear.reform(|_: MouseEvent| ())}>{ "Clear all" }</button>
            }
        </section>
    }
}
