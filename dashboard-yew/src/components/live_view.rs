use protocol::live::{Count, FeedEvent, LiveMetrics, ACTIVE_WINDOW_MINUTES};
use yew::prelude::*;

use crate::components::{
    BarList, BreakdownTable, Column, ColumnChart, Donut, Feed, InstallHint, StatCard,
};
use crate::shape::{format_clock, with_shares, ShareRow};

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
}

fn shares(rows: &[Count]) -> Vec<ShareRow> {
    with_shares(rows.iter().map(|c| (c.key.as_str(), c.count)), None)
}

/// What is happening now: active visitors, the last hour per minute, the last 30 minutes'
/// breakdowns, today's totals and the feed.
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
    let table = |id: &'static str, title: &'static str, key: &'static str, rows: &[Count]| {
        html! {
            <BreakdownTable id={id} title={title} key_label={key} rows={shares(rows)}
                empty="Nothing in the last 30 minutes." />
        }
    };
    html! {
        <main class="view live">
            if props.empty {
                <InstallHint site={props.site.clone()} origin={props.origin.clone()} />
            }
            <div class="stats">
                <StatCard id="active-visitors" label="Active visitors" value={m.active_visitors}
                    hint={AttrValue::from(format!("last {ACTIVE_WINDOW_MINUTES} minutes"))} />
                <StatCard id="today-pageviews" label="Page views today" value={m.today.pageviews} />
                <StatCard id="today-visitors" label="Visitors today" value={m.today.visitors} />
                <StatCard id="today-events" label="Events today" value={m.today.events} />
            </div>
            <section class="card wide" aria-labelledby="per-minute-title">
                <h2 id="per-minute-title">{ "Page views per minute, last 60 minutes" }</h2>
                <ColumnChart id="per-minute" title="Page views per minute, last 60 minutes"
                    unit="page views" columns={columns} />
            </section>
            <div class="grid">
                <BarList id="top-pages" title="Top pages (30 min)" rows={shares(&recent.pages)}
                    empty="No page views in the last 30 minutes." />
                <Donut id="devices" title="Devices (30 min)" rows={shares(&recent.devices)}
                    empty="No visitors in the last 30 minutes." />
                { table("browsers", "Browsers (30 min)", "Browser", &recent.browsers) }
                { table("os", "Operating systems (30 min)", "OS", &recent.os) }
                { table("referrers", "Referrers (30 min)", "Referrer", &recent.referrers) }
                { table("utm-sources", "UTM sources (30 min)", "Source", &recent.utm_sources) }
                { table("entry-pages", "Entry pages (30 min)", "Page", &recent.entry_pages) }
                { table("countries", "Countries (30 min)", "Country", &recent.countries) }
                { table("custom-events", "Custom events (30 min)", "Event", &recent.custom_events) }
                <Feed events={props.feed.clone()} now={props.at} />
            </div>
        </main>
    }
}
