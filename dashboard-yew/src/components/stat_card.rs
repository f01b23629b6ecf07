use yew::prelude::*;

use crate::shape::{format_change, Tone};

/// The change shown under a figure when comparison is on.
#[derive(Clone, PartialEq, Debug)]
pub struct Change {
    /// In percent of the earlier figure; `None` when that was 0 (shown as "new").
    pub percent: Option<f64>,
    /// The figure of the earlier range, formatted (in the tooltip).
    pub previous: String,
    /// A bounce rate going down is good (green).
    pub lower_is_better: bool,
    /// "the previous period", "last year".
    pub against: &'static str,
}

#[derive(Properties, PartialEq)]
pub struct StatCardProps {
    pub id: AttrValue,
    pub label: AttrValue,
    /// The figure as shown ("12.3k", "42%", "1m 05s").
    pub text: AttrValue,
    /// The exact figure, for `data-value` (what tests read) and the tooltip.
    pub exact: AttrValue,
    #[prop_or_default]
    pub hint: Option<AttrValue>,
    #[prop_or_default]
    pub change: Option<Change>,
    /// Makes the card a toggle button (the chart's metric), pressed when `selected`.
    #[prop_or_default]
    pub on_select: Option<Callback<()>>,
    #[prop_or_default]
    pub selected: bool,
}

/// One big figure, its change against the comparison range, and an optional hint. As a
/// button it picks what the chart shows.
#[component]
pub fn StatCard(props: &StatCardProps) -> Html {
    let label_id = format!("{}-label", props.id);
    let change = props.change.as_ref().map(|c| {
        let tone = Tone::of(c.percent, c.lower_is_better);
        let exact = c.percent.map(|p| format!("{p:.1}")).unwrap_or_default();
        html! {
            <span class={classes!("change", tone.class())} id={format!("{}-change", props.id)}
                data-change={exact} title={format!("{} in {}", c.previous, c.against)}>
                { format_change(c.percent) }
                <span class="visually-hidden">{ format!(" compared with {} ({})", c.against, c.previous) }</span>
            </span>
        }
    });
    let number = html! {
        <span id={props.id.clone()} class="number" data-value={props.exact.clone()}
            title={props.exact.clone()}>{ props.text.clone() }</span>
    };
    let hint = props
        .hint
        .as_ref()
        .map(|h| html! { <span class="muted small">{ h.clone() }</span> });
    match &props.on_select {
        Some(on_select) => html! {
            <button type="button" class="card stat" aria-pressed={props.selected.to_string()}
                aria-describedby={label_id.clone()} onclick={on_select.reform(|_: MouseEvent| ())}>
                <span class="label" id={label_id}>{ props.label.clone() }</span>
                { number }{ for change }{ for hint }
            </button>
        },
        None => html! {
            <section class="card stat" aria-labelledby={label_id.clone()}>
                <h2 class="label" id={label_id}>{ props.label.clone() }</h2>
                { number }{ for change }{ for hint }
            </section>
        },
    }
}
