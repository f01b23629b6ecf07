use protocol::stats::{Compare, Field, Filter, Goal, GoalKind};
use yew::prelude::*;

use crate::api::{self, Breakdown, Dimension, Export, Summary, Timeseries};
use crate::components::{
    BreakdownTable, Change, FilterBar, GoalsPanel, LineChart, PropPanel, RangePicker, Series,
    StatCard,
};
use crate::metric::Metric;
use crate::shape::{bucket_label, change_percent, prop_names, with_shares};
use crate::state::{Editing, History, Load, Range};

#[derive(Properties, PartialEq)]
pub struct HistoryViewProps {
    pub range: Range,
    pub compare: Option<Compare>,
    pub filters: Vec<Filter>,
    /// What the chart draws.
    pub metric: Metric,
    pub prop: Option<AttrValue>,
    pub history: History,
    pub tz_offset: i32,
    /// Today's date (`YYYY-MM-DD`), the default of the custom range inputs.
    pub today: AttrValue,
    /// Signed in as admin: goals are editable, share links and raw exports offered.
    pub admin: bool,
    pub goal_edit: Editing,
    pub on_range: Callback<Range>,
    pub on_compare: Callback<Option<Compare>>,
    pub on_metric: Callback<Metric>,
    pub on_filter: Callback<Filter>,
    pub on_remove_filter: Callback<Field>,
    pub on_invert_filter: Callback<Field>,
    pub on_clear_filters: Callback<()>,
    pub on_prop: Callback<Option<String>>,
    pub on_export: Callback<Export>,
    pub on_add_goal: Callback<(GoalKind, String)>,
    pub on_delete_goal: Callback<Goal>,
    /// Asks for fresh numbers.
    pub on_refresh: Callback<()>,
    /// Opens the share-link manager (admins).
    pub on_share: Callback<()>,
    /// Shown under the toolbar: the share-link manager when it is open.
    #[prop_or_default]
    pub children: Html,
}

/// Totals, a time series and breakdowns over a chosen range, narrowed by filters (every row
/// sets one) and compared with an earlier range when asked.
#[component]
pub fn HistoryView(props: &HistoryViewProps) -> Html {
    let h = &props.history;
    let on_goal = props.on_filter.reform(|g: Goal| match g.kind {
        GoalKind::Event => Filter::is(Dimension::Event, g.value),
        GoalKind::Page => Filter::is(Dimension::Page, g.value),
    });
    let prop_field = props.prop.as_ref().map(|p| Field::Prop(p.to_string()));
    let on_prop_pick = {
        let field = prop_field.clone();
        props.on_filter.reform(move |v: String| {
            Filter::is(field.clone().unwrap_or(Field::Dim(Dimension::Event)), v)
        })
    };
    let suggestions = prop_names(h.summary.ready(), &props.filters)
        .into_iter()
        .map(AttrValue::from)
        .collect::<Vec<_>>();
    let export = |e: Export| props.on_export.reform(move |()| e.clone());
    html! {
        <main class="view history" aria-busy={(h.outstanding > 0).to_string()}>
            <div class="toolbar">
                <RangePicker range={props.range.clone()} compare={props.compare} today={props.today.clone()}
                    on_range={props.on_range.clone()} on_compare={props.on_compare.clone()} />
                <div class="admin-tools">
                    <button type="button" id="refresh" title="Reload the numbers" aria-label="Reload the numbers"
                        onclick={props.on_refresh.reform(|_: MouseEvent| ())}>{ "↻" }</button>
                    if props.admin {
                        <button type="button" id="share-open" onclick={props.on_share.reform(|_: MouseEvent| ())}>{ "Share…" }</button>
                        <button type="button" id="export-raw" class="link" title="All events of the range, one JSON object per line"
                            onclick={props.on_export.reform(|_: MouseEvent| Export::RawEvents)}>{ "Export raw events" }</button>
                    }
                </div>
            </div>
            { props.children.clone() }
            <FilterBar filters={props.filters.clone()} on_remove={props.on_remove_filter.clone()}
                on_invert={props.on_invert_filter.clone()} on_clear={props.on_clear_filters.clone()} />
            if h.span.is_none() && h.request > 0 {
                <p class="error" role="alert">{ "That range is not valid: the start must be on or before the end." }</p>
            }
            { summary(&h.summary, props.compare, props.metric, &props.on_metric) }
            { series(h, props.metric, props.tz_offset, props.compare, export(Export::Series)) }
            <div class="grid">
                { for api::TABLES.iter().map(|d| breakdown(*d, h.breakdowns.get(d), props)) }
                <PropPanel prop={props.prop.clone()} load={h.prop.clone()} {suggestions}
                    on_prop={props.on_prop.clone()} on_pick={on_prop_pick}
                    on_export={export(Export::Breakdown(prop_field.unwrap_or(Field::Dim(Dimension::Event))))} />
                <GoalsPanel goals={h.goals.clone()} editable={props.admin} edit={props.goal_edit.clone()}
                    on_pick={on_goal} on_add={props.on_add_goal.clone()} on_delete={props.on_delete_goal.clone()}
                    on_export={export(Export::Goals)} />
            </div>
        </main>
    }
}

/// "the previous period" / "the year before": what a change is measured against.
fn against(compare: Option<Compare>) -> &'static str {
    match compare {
        Some(Compare::Year) => "the year before",
        _ => "the previous period",
    }
}

fn summary(
    load: &Load<Summary>,
    compare: Option<Compare>,
    selected: Metric,
    on_metric: &Callback<Metric>,
) -> Html {
    match load {
        Load::Ready(s) => html! {
            <div class="stats" id="history-summary">
                { for Metric::ALL.iter().map(|&m| {
                    let v = m.of_summary(s);
                    // Only when comparison is on and the answer carries the earlier range.
                    let change = compare.and(s.previous.as_deref()).map(|p| Change {
                        percent: change_percent(v, m.of_summary(p)),
                        previous: m.format(m.of_summary(p)),
                        lower_is_better: m.lower_is_better(),
                        against: against(compare),
                    });
                    html! {
                        <StatCard id={format!("summary-{}", m.key())} label={m.label()} text={m.format(v)}
                            exact={m.exact(v)} {change} selected={m == selected}
                            on_select={on_metric.reform(move |()| m)} />
                    }
                }) }
            </div>
        },
        Load::Failed(e) => {
            html! { <p class="error" role="alert">{ format!("Totals could not be loaded: {e}") }</p> }
        }
        Load::Unavailable => {
            html! { <p class="muted">{ "Totals are not available on this server." }</p> }
        }
        Load::Loading | Load::Idle => {
            html! { <p class="muted" aria-busy="true">{ "Loading…" }</p> }
        }
    }
}

fn series(
    h: &History,
    m: Metric,
    tz: i32,
    compare: Option<Compare>,
    on_export: Callback<()>,
) -> Html {
    let line = |ts: &Timeseries, name: String, class: &'static str| Series {
        name,
        class,
        values: ts.points.iter().map(|p| m.of_point(p)).collect(),
        labels: ts
            .points
            .iter()
            .map(|p| {
                let day = crate::shape::format_date(p.ts, tz);
                match ts.interval {
                    api::Interval::Day => day,
                    _ => format!("{day} {}", bucket_label(p.ts, ts.interval, tz)),
                }
            })
            .collect(),
    };
    let body = match &h.series {
        Load::Ready(ts) => {
            let labels: Vec<String> = ts
                .points
                .iter()
                .map(|p| bucket_label(p.ts, ts.interval, tz))
                .collect();
            let mut lines = vec![line(ts, m.label().to_lowercase(), "current")];
            if let (Some(_), Some(prev)) = (compare, ts.previous.as_deref()) {
                lines.push(line(prev, against(compare).to_string(), "previous"));
            }
            html! {
                <LineChart id="history-series" title={format!("{} per {}", m.label(), ts.interval.name())}
                    metric={m} {labels} series={lines} />
            }
        }
        Load::Unavailable => html! {
            <p class="muted" id="series-unavailable">{ "The time series is not available on this server." }</p>
        },
        Load::Failed(e) => {
            html! { <p class="error">{ format!("The time series could not be loaded: {e}") }</p> }
        }
        _ => html! { <p class="muted" aria-busy="true">{ "Loading…" }</p> },
    };
    html! {
        <section class="card wide panel" aria-labelledby="series-title">
            <header class="panel-head">
                <h2 id="series-title">{ format!("{} over time", m.label()) }</h2>
                <button type="button" class="link export" title="Download the time series as CSV"
                    onclick={on_export.reform(|_: MouseEvent| ())}>{ "CSV" }</button>
            </header>
            { body }
        </section>
    }
}

fn breakdown(dim: Dimension, load: Option<&Load<Breakdown>>, props: &HistoryViewProps) -> Html {
    let filtered = props.filters.iter().any(|f| f.field == Field::Dim(dim));
    let (rows, empty) = match load {
        Some(Load::Ready(b)) => {
            // Regions, cities and the rarer UTM fields only when the site has them.
            if b.rows.is_empty() && api::hidden_when_empty(dim) && !filtered {
                return html! {};
            }
            let rows = with_shares(
                b.rows.iter().map(|r| (r.value.as_str(), r.count)),
                Some(b.total),
            );
            (rows, "Nothing in this range.".to_string())
        }
        Some(Load::Unavailable) => (vec![], "Not available on this server.".into()),
        Some(Load::Failed(e)) => (vec![], format!("Could not be loaded: {e}")),
        _ => (vec![], "Loading…".into()),
    };
    let field = Field::Dim(dim);
    html! {
        <BreakdownTable id={format!("breakdown-{}", dim.name())} title={api::title(dim)}
            key_label={api::field_label(&field)} count_label={api::counts(dim)} {rows} empty={empty}
            on_pick={Some(props.on_filter.reform(move |v: String| Filter::is(dim, v)))}
            on_export={Some(props.on_export.reform(move |()| Export::Breakdown(field.clone())))} />
    }
}
