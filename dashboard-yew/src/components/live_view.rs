use protocol::live::{Count, FeedEvent, LiveMetrics, ACTIVE_WINDOW_MINUTES};
use protocol::stats::{Dimension, Filter};
use yew::prelude::*;

use crate::components::{
    BarList, BreakdownTable, Column, ColumnChart, Donut, Feed, InstallHint, StatCard,
};
use crate::metric::Metric;
use crate::shape::{format_clock, format_count, with_shares, ShareRow};

#[derive(Properties, PartialEq)]
pub struct LiveViewProps {
    pub site: AttrValue,
    /// `None` until the first snapshot.
    pub live: Option<LiveMetrics>,
    pub feed: Vec<FeedEvent>,
    /// Server time of `live`.
    pub at: i64,
    /// Nothing recorded for this site yet: show how to install the tracker.
    pub empty: bool,
    pub origin: AttrValue,
    pub tz_offset: i32,
    /// A row was picked: filter today's history by it.
    pub on_pick: Callback<Filter>,
}

fn shares(rows: &[Count]) -> Vec<ShareRow> {
    with_shares(rows.iter().map(|c| (c.key.as_str(), c.count)), None)
}

/// What is happening now: active visitors, today's figures, the last hour per minute, the
/// last 30 minutes' breakdowns and the feed. Every row opens today's history filtered by it.
#[component]
pub fn LiveView(props: &LiveViewProps) -> Html {
    let Some(m) = &props.live else {
        return html! {
            <main class="view">
                if props.empty {
                    <InstallHint site={props.site.clone()} origin={props.origin.clone()} />
                }
                <p class="muted" aria-busy="true">{ "Waiting for live data…" }</p>
            </main>
        };
    };
    let columns: Vec<Column> = m
        .per_minute
        .iter()
        .map(|p| Column {
            label: format_clock(p.minute, props.tz_offset),
            value: p.pageviews,
        })
        .collect();
    let recent = &m.recent;
    let pick = |dim: Dimension| Some(props.on_pick.reform(move |v: String| Filter::is(dim, v)));
    let table = |id: &'static str, title: &'static str, dim: Dimension, rows: &[Count]| {
        html! {
            <BreakdownTable id={id} title={title} key_label={crate::api::field_label(&dim.into())}
                rows={shares(rows)} empty="Nothing in the last 30 minutes." on_pick={pick(dim)} />
        }
    };
    let today = |metric: Metric| {
        let v = metric.of_today(&m.today);
        html! {
            <StatCard id={format!("today-{}", metric.key())} label={format!("{} today", metric.label())}
                text={metric.format(v)} exact={metric.exact(v)} />
        }
    };
    html! {
        <main class="view live">
            if props.empty {
                <InstallHint site={props.site.clone()} origin={props.origin.clone()} />
            }
            <div class="stats">
                <StatCard id="active-visitors" label="Active visitors" text={format_count(m.active_visitors)}
                    exact={m.active_visitors.to_string()}
                    hint={AttrValue::from(format!("last {ACTIVE_WINDOW_MINUTES} minutes"))} />
                { for Metric::ALL.into_iter().map(today) }
                <StatCard id="today-events" label="Events today" text={format_count(m.today.events)}
                    exact={m.today.events.to_string()} />
            </div>
            <section class="card wide" aria-labelledby="per-minute-title">
                <h2 id="per-minute-title">{ "Page views per minute, last 60 minutes" }</h2>
                <ColumnChart id="per-minute" title="Page views per minute, last 60 minutes"
                    unit="page views" columns={columns} />
            </section>
            <div class="grid">
                <BarList id="top-pages" title="Top pages (30 min)" rows={shares(&recent.pages)}
                    empty="No page views in the last 30 minutes." on_pick={pick(Dimension::Page)} />
                <Donut id="devices" title="Devices (30 min)" rows={shares(&recent.devices)}
                    empty="No visitors in the last 30 minutes." on_pick={pick(Dimension::Device)} />
                { table("browsers", "Browsers (30 min)", Dimension::Browser, &recent.browsers) }
                { table("os", "Operating systems (30 min)", Dimension::Os, &recent.os) }
                { table("referrers", "Referrers (30 min)", Dimension::Referrer, &recent.referrers) }
                { table("utm-sources", "UTM sources (30 min)", Dimension::UtmSource, &recent.utm_sources) }
                { table("entry-pages", "Entry pages (30 min)", Dimension::EntryPage, &recent.entry_pages) }
                { table("countries", "Countries (30 min)", Dimension::Country, &recent.countries) }
                { table("custom-events", "Custom events (30 min)", Dimension::Event, &recent.custom_events) }
                <Feed events={props.feed.clone()} now={props.at} />
            </div>
        </main>
    }
}
