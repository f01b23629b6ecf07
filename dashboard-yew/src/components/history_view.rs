use yew::prelude::*;

use crate::api::{self, Breakdown, Dimension};
use crate::components::{BreakdownTable, LineChart, Series, StatCard};
use crate::shape::{bucket_label, fill_buckets, with_shares, Bucket};
use crate::state::{History, Load, Range};

#[derive(Properties, PartialEq)]
pub struct HistoryViewProps {
    pub range: Range,
    pub history: History,
    pub tz_offset: i32,
    /// Today's date (`YYYY-MM-DD`), the default of the custom range inputs.
    pub today: AttrValue,
    pub on_range: Callback<Range>,
}

/// Event names the tracker sends by itself; every other name is a custom event.
const BUILT_IN: [&str; 4] = ["page_view", "click", "session_start", "session_end"];

/// Totals, a time series and breakdowns over a chosen range.
#[component]
pub fn HistoryView(props: &HistoryViewProps) -> Html {
    let h = &props.history;
    // One note instead of nine identical ones on a server without the history API.
    let all_unavailable = !h.breakdowns.is_empty()
        && h.breakdowns
            .values()
            .all(|l| matches!(l, Load::Unavailable));
    html! {
        <main class="view history">
            <RangePicker range={props.range.clone()} today={props.today.clone()} on_range={props.on_range.clone()} />
            if h.span.is_none() && h.request > 0 {
                <p class="error" role="alert">{ "That range is not valid: the start must be on or before the end." }</p>
            }
            { summary(&h.summary) }
            { series(h, props.tz_offset) }
            <div class="grid">
                { custom_events(&h.summary) }
                if all_unavailable {
                    <section class="card" id="breakdowns-unavailable">
                        <h2>{ "Breakdowns" }</h2>
                        <p class="muted">{ "Breakdowns by page, referrer, UTM source, device, browser, \
                            OS, country and event are not available on this server yet (they need \
                            the history API)." }</p>
                    </section>
                } else {
                    { for api::TABLES.iter().map(|d| breakdown(*d, h.breakdowns.get(d))) }
                }
            </div>
        </main>
    }
}

fn summary(load: &Load<crate::api::Summary>) -> Html {
    match load {
        Load::Ready(s) => html! {
            <div class="stats" id="history-summary">
                <StatCard id="summary-visitors" label="Unique visitors" value={s.visitors} />
                <StatCard id="summary-pageviews" label="Page views" value={s.pageviews} />
                <StatCard id="summary-sessions" label="Sessions" value={s.sessions} />
                <StatCard id="summary-events" label="Events" value={s.events} />
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

fn series(h: &History, tz: i32) -> Html {
    let body = match (&h.series, h.span) {
        (Load::Ready(ts), Some(span)) => {
            let interval = ts.interval;
            let points: Vec<Bucket> = ts
                .points
                .iter()
                .map(|p| Bucket {
                    start: p.ts,
                    pageviews: p.pageviews,
                    visitors: p.visitors,
                })
                .collect();
            let buckets = fill_buckets(&points, span.from, span.to, interval, tz);
            let labels: Vec<String> = buckets
                .iter()
                .map(|b| bucket_label(b.start, interval, tz))
                .collect();
            html! {
                <LineChart id="history-series" title={format!("Page views and visitors per {}", interval.name())}
                    {labels} series={vec![
                        Series { name: "page views", class: "pageviews", values: buckets.iter().map(|b| b.pageviews).collect() },
                        Series { name: "visitors", class: "visitors", values: buckets.iter().map(|b| b.visitors).collect() },
                    ]} />
            }
        }
        (Load::Unavailable, _) => html! {
            <p class="muted" id="series-unavailable">{ "The time series is not available on this server yet (it needs the history API)." }</p>
        },
        (Load::Failed(e), _) => {
            html! { <p class="error">{ format!("The time series could not be loaded: {e}") }</p> }
        }
        _ => html! { <p class="muted" aria-busy="true">{ "Loading…" }</p> },
    };
    html! {
        <section class="card wide" aria-labelledby="series-title">
            <h2 id="series-title">{ "Over time" }</h2>
            { body }
        </section>
    }
}

fn custom_events(load: &Load<crate::api::Summary>) -> Html {
    let Some(s) = load.ready() else {
        return html! {};
    };
    let custom: Vec<(&str, u64)> = s
        .events_by_name
        .iter()
        .filter(|(name, _)| !BUILT_IN.contains(&name.as_str()))
        .map(|(name, n)| (name.as_str(), *n))
        .collect();
    let mut rows = with_shares(custom, Some(s.events));
    rows.sort_by_key(|r| std::cmp::Reverse(r.count));
    html! {
        <BreakdownTable id="history-custom-events" title="Custom events" key_label="Event" {rows}
            empty="No custom events in this range. Send them with footfall.track(\"signup\")." />
    }
}

fn breakdown(dim: Dimension, load: Option<&Load<Breakdown>>) -> Html {
    let id = format!("breakdown-{}", dim.name());
    let (rows, empty) = match load {
        Some(Load::Ready(b)) => {
            let rows = with_shares(
                b.rows.iter().map(|r| (r.value.as_str(), r.count)),
                Some(b.total),
            );
            (rows, "Nothing in this range.".to_string())
        }
        Some(Load::Unavailable) => (vec![], "Not available on this server yet.".into()),
        Some(Load::Failed(e)) => (vec![], format!("Could not be loaded: {e}")),
        _ => (vec![], "Loading…".into()),
    };
    html! {
        <BreakdownTable id={id} title={api::title(dim)} key_label={api::title(dim)} {rows} empty={empty} />
    }
}

#[derive(Properties, PartialEq)]
struct RangePickerProps {
    range: Range,
    today: AttrValue,
    on_range: Callback<Range>,
}

/// Today / 7 days / 30 days buttons and a custom from–to pair of date inputs.
#[component]
fn RangePicker(props: &RangePickerProps) -> Html {
    let from = use_node_ref();
    let to = use_node_ref();
    let preset = |r: Range, id: &'static str| {
        let selected = std::mem::discriminant(&props.range) == std::mem::discriminant(&r);
        let label = r.label();
        let onclick = props.on_range.reform(move |_: MouseEvent| r.clone());
        html! {
            <button {id} aria-pressed={selected.to_string()} class={classes!(selected.then_some("active"))} {onclick}>{ label }</button>
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
        </div>
    }
}
