use protocol::stats::Compare;
use yew::prelude::*;

use crate::state::Range;

#[derive(Properties, PartialEq)]
pub struct RangePickerProps {
    pub range: Range,
    pub compare: Option<Compare>,
    /// Today's date (`YYYY-MM-DD`), the default and maximum of the date inputs.
    pub today: AttrValue,
    pub on_range: Callback<Range>,
    pub on_compare: Callback<Option<Compare>>,
}

/// Today / 7 days / 30 days buttons, a custom from–to pair of date inputs, and what to
/// compare with (off, the previous period, the same range last year).
#[component]
pub fn RangePicker(props: &RangePickerProps) -> Html {
    let from = use_node_ref();
    let to = use_node_ref();
    let preset = |r: Range, id: &'static str| {
        let selected = std::mem::discriminant(&props.range) == std::mem::discriminant(&r);
        let label = r.label();
        let onclick = props.on_range.reform(move |_: MouseEvent| r.clone());
        html! {
            <button type="button" {id} aria-pressed={selected.to_string()} {onclick}>{ label }</button>
        }
    };
    let apply = {
        let (from, to, on_range) = (from.clone(), to.clone(), props.on_range.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let value = |r: &NodeRef| {
                r.cast::<web_sys::HtmlInputElement>()
                    .map(|i| i.value())
                    .unwrap_or_default()
            };
            on_range.emit(Range::Custom {
                from: value(&from),
                to: value(&to),
            });
        })
    };
    let (from_value, to_value) = match &props.range {
        Range::Custom { from, to } => (from.clone(), to.clone()),
        _ => (props.today.to_string(), props.today.to_string()),
    };
    let on_compare = props.on_compare.reform(|e: Event| {
        Compare::from_name(
            &e.target_unchecked_into::<web_sys::HtmlSelectElement>()
                .value(),
        )
    });
    let option = |value: &'static str, label: &'static str| {
        let selected = props.compare.map_or("off", |c| c.name()) == value;
        html! { <option {value} {selected}>{ label }</option> }
    };
    html! {
        <div class="ranges" role="group" aria-label="Date range">
            { preset(Range::Today, "range-today") }
            { preset(Range::Last7Days, "range-7d") }
            { preset(Range::Last30Days, "range-30d") }
            <form class="custom" onsubmit={apply}>
                <label>{ "From " }<input ref={from} type="date" value={from_value} max={props.today.clone()} /></label>
                <label>{ "to " }<input ref={to} type="date" value={to_value} max={props.today.clone()} /></label>
                <button type="submit" id="range-custom">{ "Apply" }</button>
            </form>
            <label class="compare">{ "Compare " }
                <select id="compare" onchange={on_compare}>
                    { option("off", "off") }
                    { option("previous", "with the previous period") }
                    { option("year", "with the year before") }
                </select>
            </label>
        </div>
    }
}
