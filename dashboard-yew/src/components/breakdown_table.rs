use yew::prelude::*;

use crate::shape::{format_count, format_percent, group_thousands, ShareRow};

#[derive(Properties, PartialEq)]
pub struct BreakdownTableProps {
    pub id: AttrValue,
    pub title: AttrValue,
    /// Header of the first column ("Browser").
    pub key_label: AttrValue,
    pub rows: Vec<ShareRow>,
    /// Shown instead of the table when there is nothing to list (or it cannot be loaded).
    pub empty: AttrValue,
}

/// A breakdown as a table: key, count, share of the total (with a bar behind it).
#[component]
pub fn BreakdownTable(props: &BreakdownTableProps) -> Html {
    html! {
        <section class="card" aria-labelledby={format!("{}-title", props.id)}>
            <h2 id={format!("{}-title", props.id)}>{ props.title.clone() }</h2>
            if props.rows.is_empty() {
                <p class="muted" id={props.id.clone()}>{ props.empty.clone() }</p>
            } else {
                <table id={props.id.clone()}>
                    <thead><tr>
                        <th scope="col">{ props.key_label.clone() }</th>
                        <th scope="col" class="num">{ "Count" }</th>
                        <th scope="col" class="num">{ "%" }</th>
                    </tr></thead>
                    <tbody>
                        { for props.rows.iter().map(|r| html! {
                            <tr style={format!("--share:{:.1}%", r.percent.min(100.0))}>
                                <td class="key">{ if r.key.is_empty() { "(none)".to_string() } else { r.key.clone() } }</td>
                                <td class="num" title={group_thousands(r.count)}>{ format_count(r.count) }</td>
                                <td class="num">{ format_percent(r.percent) }</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            }
        </section>
    }
}
