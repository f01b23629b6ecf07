use yew::prelude::*;

use crate::shape::{format_count, format_percent, ShareRow};

#[derive(Properties, PartialEq)]
pub struct DonutProps {
    pub id: AttrValue,
    pub title: AttrValue,
    pub rows: Vec<ShareRow>,
    pub empty: AttrValue,
    /// Makes every legend key a button that filters by it.
    #[prop_or_default]
    pub on_pick: Option<Callback<String>>,
}

/// Circumference of the ring's circle (r = 15.915…) is 100, so a share in percent is
/// directly its dash length.
const R: &str = "15.91549";

/// A donut (SVG): one stroked circle per share, offset by the shares before it, and a legend
/// with counts and percentages (which is also what screen readers get).
#[component]
pub fn Donut(props: &DonutProps) -> Html {
    let mut offset = 0.0;
    let label = props
        .rows
        .iter()
        .map(|r| format!("{} {}", r.key, format_percent(r.percent)))
        .collect::<Vec<_>>()
        .join(", ");
    html! {
        <section class="card" aria-labelledby={format!("{}-title", props.id)}>
            <h2 id={format!("{}-title", props.id)}>{ props.title.clone() }</h2>
            if props.rows.is_empty() {
                <p class="muted">{ props.empty.clone() }</p>
            } else {
                <div class="donut" id={props.id.clone()}>
                    <svg viewBox="0 0 42 42" role="img" aria-label={format!("{}: {label}", props.title)}>
                        <circle class="ring" cx="21" cy="21" r={R} />
                        { for props.rows.iter().enumerate().map(|(i, r)| {
                            // The ring starts at 12 o'clock (25 = a quarter turn back).
                            let dash = format!("{:.3} {:.3}", r.percent, 100.0 - r.percent);
                            let html = html! {
                                <circle class={format!("slice c{}", i % 6)} cx="21" cy="21" r={R}
                                    stroke-dasharray={dash} stroke-dashoffset={format!("{:.3}", 25.0 - offset)}>
                                    <title>{ format!("{}: {}", r.key, format_percent(r.percent)) }</title>
                                </circle>
                            };
                            offset += r.percent;
                            html
                        }) }
                    </svg>
                    <ul class="legend">
                        { for props.rows.iter().enumerate().map(|(i, r)| html! {
                            <li><span class={format!("swatch c{}", i % 6)} aria-hidden="true"></span>
                                { super::pick_key(&r.key, props.on_pick.as_ref()) }
                                <span class="count">{ format!("{} · {}", format_count(r.count), format_percent(r.percent)) }</span></li>
                        }) }
                    </ul>
                </div>
            }
        </section>
    }
}
