use yew::prelude::*;

use crate::shape::{format_tick, group_thousands, nice_max};

/// One column: its axis label and value.
#[derive(Clone, PartialEq, Debug)]
pub struct Column {
    pub label: String,
    pub value: u64,
}

#[derive(Properties, PartialEq)]
pub struct ColumnChartProps {
    pub id: AttrValue,
    pub title: AttrValue,
    /// What a value counts ("page views"), for the labels.
    pub unit: AttrValue,
    pub columns: Vec<Column>,
}

const W: f64 = 600.0;
const H: f64 = 180.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 8.0;

/// A column chart in SVG: one bar per bucket, a round y-axis maximum with a midline, the
/// first, middle and last labels on the x-axis. Each bar has a `<title>` (hover and screen
/// readers); the chart as a whole is summarised in its `aria-label`.
#[component]
pub fn ColumnChart(props: &ColumnChartProps) -> Html {
    let n = props.columns.len().max(1) as f64;
    let max = props.columns.iter().map(|c| c.value).max().unwrap_or(0);
    let total: u64 = props.columns.iter().map(|c| c.value).sum();
    let top = nice_max(max) as f64;
    let plot_w = W - LEFT;
    let plot_h = H - BOTTOM - TOP;
    let step = plot_w / n;
    let y = |v: f64| TOP + plot_h - v / top * plot_h;
    let summary = format!(
        "{}: {} {} in total, at most {} per bar",
        props.title,
        group_thousands(total),
        props.unit,
        group_thousands(max)
    );
    let label_at = |i: usize| {
        props
            .columns
            .get(i)
            .map(|c| c.label.clone())
            .unwrap_or_default()
    };
    let last = props.columns.len().saturating_sub(1);
    html! {
        <figure class="chart" id={props.id.clone()} data-total={total.to_string()}>
            <svg viewBox={format!("0 0 {W} {H}")} role="img" aria-label={summary}>
                { for [0.0, top / 2.0, top].iter().map(|v| html! {
                    <g class="grid">
                        <line x1={LEFT.to_string()} x2={W.to_string()} y1={y(*v).to_string()} y2={y(*v).to_string()} />
                        <text x={(LEFT - 4.0).to_string()} y={(y(*v) + 4.0).to_string()} text-anchor="end">
                            { format_tick(*v) }
                        </text>
                    </g>
                }) }
                { for props.columns.iter().enumerate().map(|(i, c)| {
                    let h = c.value as f64 / top * plot_h;
                    html! {
                        <rect class="bar" x={format!("{:.2}", LEFT + i as f64 * step + step * 0.1)}
                            y={format!("{:.2}", TOP + plot_h - h)}
                            width={format!("{:.2}", (step * 0.8).max(0.5))} height={format!("{h:.2}")}>
                            <title>{ format!("{}: {} {}", c.label, group_thousands(c.value), props.unit) }</title>
                        </rect>
                    }
                }) }
                <g class="axis">
                    <text x={LEFT.to_string()} y={(H - 4.0).to_string()}>{ label_at(0) }</text>
                    <text x={(LEFT + plot_w / 2.0).to_string()} y={(H - 4.0).to_string()} text-anchor="middle">{ label_at(last / 2) }</text>
                    <text x={W.to_string()} y={(H - 4.0).to_string()} text-anchor="end">{ label_at(last) }</text>
                </g>
            </svg>
            <figcaption class="visually-hidden">{ props.title.clone() }</figcaption>
        </figure>
    }
}
