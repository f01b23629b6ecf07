use yew::prelude::*;

use crate::shape::{format_count, format_percent, ShareRow};

#[derive(Properties, PartialEq)]
pub struct BarListProps {
    pub id: AttrValue,
    pub title: AttrValue,
    pub rows: Vec<ShareRow>,
    /// Shown when there are no rows.
    pub empty: AttrValue,
    /// Makes every key a button that filters by it.
    #[prop_or_default]
    pub on_pick: Option<Callback<String>>,
}

/// Horizontal bars (SVG) with the key and count beside each: the top pages.
#[component]
pub fn BarList(props: &BarListProps) -> Html {
    let max = props.rows.iter().map(|r| r.count).max().unwrap_or(0).max(1);
    html! {
        <section class="card" aria-labelledby={format!("{}-title", props.id)}>
            <h2 id={format!("{}-title", props.id)}>{ props.title.clone() }</h2>
            if props.rows.is_empty() {
                <p class="muted">{ props.empty.clone() }</p>
            } else {
                <ol class="bars" id={props.id.clone()}>
                    { for props.rows.iter().map(|r| {
                        let w = r.count as f64 * 100.0 / max as f64;
                        html! {
                            <li title={format!("{}: {} ({})", r.key, r.count, format_percent(r.percent))}>
                                <svg class="bar-bg" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">
                                    <rect width={format!("{w:.2}")} height="10" rx="1" />
                                </svg>
                                { super::pick_key(&r.key, props.on_pick.as_ref()) }
                                <span class="count">{ format_count(r.count) }</span>
                            </li>
                        }
                    }) }
                </ol>
            }
        </section>
    }
}
