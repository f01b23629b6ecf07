use yew::prelude::*;

use crate::shape::{format_count, format_percent, group_thousands, ShareRow};

#[derive(Properties, PartialEq)]
pub struct BreakdownTableProps {
    pub id: AttrValue,
    pub title: AttrValue,
    /// Header of the first column ("Browser").
    pub key_label: AttrValue,
    /// Header of the count column ("Visits").
    #[prop_or(AttrValue::Static("Count"))]
    pub count_label: AttrValue,
    pub rows: Vec<ShareRow>,
    /// Shown instead of the table when there is nothing to list (or it cannot be loaded).
    pub empty: AttrValue,
    /// Makes every row a button that filters by its key.
    #[prop_or_default]
    pub on_pick: Option<Callback<String>>,
    /// Shows an "Export CSV" button.
    #[prop_or_default]
    pub on_export: Option<Callback<()>>,
    /// Controls between the heading and the table (the property picker).
    #[prop_or_default]
    pub children: Html,
}

/// Key shown for an empty value.
const NONE: &str = "(none)";

/// A breakdown as a table: key, count, share of the total (with a bar behind it). Rows are
/// buttons when they filter, so the keyboard reaches them.
#[component]
pub fn BreakdownTable(props: &BreakdownTableProps) -> Html {
    let title_id = format!("{}-title", props.id);
    let key = |r: &ShareRow| {
        let shown = if r.key.is_empty() {
            NONE
        } else {
            r.key.as_str()
        };
        match &props.on_pick {
            Some(pick) => {
                let value = r.key.clone();
                html! {
                    <button type="button" class="pick" title={format!("Filter by {}: {shown}", props.key_label)}
                        onclick={pick.reform(move |_: MouseEvent| value.clone())}>{ shown }</button>
                }
            }
            None => html! { shown },
        }
    };
    html! {
        <section class="card panel" aria-labelledby={title_id.clone()}>
            <header class="panel-head">
                <h2 id={title_id}>{ props.title.clone() }</h2>
                if let Some(export) = &props.on_export {
                    <button type="button" class="link export" title={format!("Download {} as CSV", props.title)}
                        onclick={export.reform(|_: MouseEvent| ())}>{ "CSV" }</button>
                }
            </header>
            { props.children.clone() }
            if props.rows.is_empty() {
                <p class="muted" id={props.id.clone()}>{ props.empty.clone() }</p>
            } else {
                <table id={props.id.clone()}>
                    <thead><tr>
                        <th scope="col">{ props.key_label.clone() }</th>
                        <th scope="col" class="num">{ props.count_label.clone() }</th>
                        <th scope="col" class="num">{ "%" }</th>
                    </tr></thead>
                    <tbody>
                        { for props.rows.iter().map(|r| html! {
                            <tr style={format!("--share:{:.1}%", r.percent.min(100.0))} data-key={r.key.clone()}>
                                <td class="key">{ key(r) }</td>
                                <td class="num" data-value={r.count.to_string()} title={group_thousands(r.count)}>{ format_count(r.count) }</td>
                                <td class="num">{ format_percent(r.percent) }</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            }
        </section>
    }
}
