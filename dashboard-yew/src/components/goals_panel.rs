use protocol::stats::{Goal, GoalKind, GoalStats};
use yew::prelude::*;

use crate::shape::{format_count, format_percent, group_thousands};
use crate::state::{Editing, Load};

#[derive(Properties, PartialEq)]
pub struct GoalsPanelProps {
    pub goals: Load<GoalStats>,
    /// Shows the add form and delete buttons (the admin token; a share link only reads).
    pub editable: bool,
    pub edit: Editing,
    /// A goal's row: filter by what it counts.
    pub on_pick: Callback<Goal>,
    pub on_add: Callback<(GoalKind, String)>,
    pub on_delete: Callback<Goal>,
    pub on_export: Callback<()>,
}

/// "signup" for an event goal, "Visit /thanks/*" for a page goal.
pub fn goal_name(goal: &Goal) -> String {
    match goal.kind {
        GoalKind::Event => goal.value.clone(),
        GoalKind::Page => format!("Visit {}", goal.value),
    }
}

/// Conversions per goal (converting visitors, conversions, conversion rate), and for admins
/// the form that defines goals: a custom event's name, or a page path with `*` wildcards.
#[component]
pub fn GoalsPanel(props: &GoalsPanelProps) -> Html {
    let kind = use_node_ref();
    let value = use_node_ref();
    let onsubmit = {
        let (kind, value, on_add) = (kind.clone(), value.clone(), props.on_add.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let k = match kind.cast::<web_sys::HtmlSelectElement>().map(|s| s.value()) {
                Some(k) if k == "page" => GoalKind::Page,
                _ => GoalKind::Event,
            };
            if let Some(input) = value.cast::<web_sys::HtmlInputElement>() {
                let v = input.value().trim().to_string();
                if !v.is_empty() {
                    on_add.emit((k, v));
                    input.set_value("");
                }
            }
        })
    };
    let body = match &props.goals {
        Load::Ready(stats) if stats.goals.is_empty() => html! {
            <p class="muted" id="goals">{ if props.editable {
                "No goals yet. Add one below: a custom event (signup) or a page (/thanks/*)."
            } else {
                "This site has no goals."
            } }</p>
        },
        Load::Ready(stats) => html! {
            <table id="goals">
                <thead><tr>
                    <th scope="col">{ "Goal" }</th>
                    <th scope="col" class="num">{ "Visitors" }</th>
                    <th scope="col" class="num" title="Conversions">{ "Conv." }</th>
                    <th scope="col" class="num">{ "Rate" }</th>
                    if props.editable { <th scope="col"><span class="visually-hidden">{ "Delete" }</span></th> }
                </tr></thead>
                <tbody>
                    { for stats.goals.iter().map(|r| {
                        let name = goal_name(&r.goal);
                        let (pick, delete) = (r.goal.clone(), r.goal.clone());
                        html! {
                            <tr data-goal={r.goal.value.clone()} style={format!("--share:{:.1}%", r.conversion_rate.min(100.0))}>
                                <td class="key">
                                    <button type="button" class="pick" title={format!("Filter by goal {name}")}
                                        onclick={props.on_pick.reform(move |_: MouseEvent| pick.clone())}>{ name.clone() }</button>
                                </td>
                                <td class="num visitors" data-value={r.visitors.to_string()} title={group_thousands(r.visitors)}>{ format_count(r.visitors) }</td>
                                <td class="num conversions" data-value={r.conversions.to_string()} title={group_thousands(r.conversions)}>{ format_count(r.conversions) }</td>
                                <td class="num rate" data-value={r.conversion_rate.to_string()}>{ format_percent(r.conversion_rate) }</td>
                                if props.editable {
                                    <td><button type="button" class="link goal-delete" disabled={props.edit.busy}
                                        aria-label={format!("Delete goal {name}")}
                                        title={format!("Delete goal {name}")}
                                        onclick={props.on_delete.reform(move |_: MouseEvent| delete.clone())}>{ "×" }</button></td>
                                }
                            </tr>
                        }
                    }) }
                </tbody>
            </table>
        },
        Load::Unavailable => {
            html! { <p class="muted" id="goals">{ "Goals are not available on this server." }</p> }
        }
        Load::Failed(e) => {
            html! { <p class="error" id="goals">{ format!("Goals could not be loaded: {e}") }</p> }
        }
        Load::Loading | Load::Idle => {
            html! { <p class="muted" id="goals" aria-busy="true">{ "Loading…" }</p> }
        }
    };
    html! {
        <section class="card panel" id="goals-panel" aria-labelledby="goals-title">
            <header class="panel-head">
                <h2 id="goals-title">{ "Goals" }</h2>
                <button type="button" class="link export" title="Download Goals as CSV"
                    onclick={props.on_export.reform(|_: MouseEvent| ())}>{ "CSV" }</button>
            </header>
            { body }
            if props.editable {
                <form class="goal-form" {onsubmit} aria-label="Add a goal">
                    <label>{ "Goal " }
                        <select id="goal-kind" ref={kind}>
                            <option value="event">{ "Custom event" }</option>
                            <option value="page">{ "Page visit" }</option>
                        </select>
                    </label>
                    <label><span class="visually-hidden">{ "Event name or page path" }</span>
                        <input id="goal-value" ref={value} placeholder="signup or /thanks/*" maxlength="200" required=true />
                    </label>
                    <button type="submit" id="goal-add" disabled={props.edit.busy}>{ "Add goal" }</button>
                </form>
                if let Some(e) = &props.edit.error {
                    <p class="error" role="alert">{ format!("The goal could not be saved: {e}") }</p>
                }
            }
        </section>
    }
}
