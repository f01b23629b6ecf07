use yew::prelude::*;

use crate::metric::Metric;
use crate::shape::nice_max;

/// One line of a [`LineChart`].
#[derive(Clone, PartialEq, Debug)]
pub struct Series {
    pub name: String,
    /// CSS class that styles it (`current`, `previous`: dashed).
    pub class: &'static str,
    pub values: Vec<f64>,
    /// Each point's time, for its tooltip.
    pub labels: Vec<String>,
}

#[derive(Properties, PartialEq)]
pub struct LineChartProps {
    pub id: AttrValue,
    pub title: AttrValue,
    /// What the values are: formats the axis, tooltips and legend.
    pub metric: Metric,
    /// Axis labels, one per point of the first series.
    pub labels: Vec<String>,
    pub series: Vec<Series>,
}

const W: f64 = 600.0;
const H: f64 = 200.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 8.0;

/// Lines over time in SVG, sharing one round y-axis maximum; the first series is filled as an
/// area, a comparison series is dashed (CSS). Every point has a `<title>`; the legend names
/// the series (with totals for counts).
#[component]
pub fn LineChart(props: &LineChartProps) -> Html {
    let m = props.metric;
    let n = props.labels.len();
    let max = props
        .series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max);
    let top = nice_max(max.ceil() as u64) as f64;
    let plot_w = W - LEFT;
    let plot_h = H - BOTTOM - TOP;
    let x = |i: usize| {
        if n <= 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + i as f64 * plot_w / (n - 1) as f64
        }
    };
    let y = |v: f64| TOP + plot_h - v / top * plot_h;
    let points = |values: &[f64]| {
        values
            .iter()
            .take(n)
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let legend = |s: &Series| {
        if m.is_count() {
            format!("{} {}", m.format(s.values.iter().sum()), s.name)
        } else {
            s.name.clone()
        }
    };
    let summary = props
        .series
        .iter()
        .map(legend)
        .collect::<Vec<_>>()
        .join(", ");
    let label_at = |i: usize| props.labels.get(i).cloned().unwrap_or_default();
    let last = n.saturating_sub(1);
    html! {
        <figure class="chart" id={props.id.clone()} data-series={props.series.len().to_string()}>
            <svg viewBox={format!("0 0 {W} {H}")} role="img" aria-label={format!("{}: {summary}", props.title)}>
                { for [0.0, top / 2.0, top].iter().map(|v| html! {
                    <g class="grid">
                        <line x1={LEFT.to_string()} x2={W.to_string()} y1={y(*v).to_string()} y2={y(*v).to_string()} />
                        <text x={(LEFT - 4.0).to_string()} y={(y(*v) + 4.0).to_string()} text-anchor="end">{ m.format_tick(*v) }</text>
                    </g>
                }) }
                { for props.series.iter().enumerate().map(|(k, s)| html! {
                    <g class={classes!("series", s.class)}>
                        if k == 0 && n > 1 {
                            <polygon class="area" points={format!("{:.1},{:.1} {} {:.1},{:.1}", x(0), y(0.0), points(&s.values), x(last), y(0.0))} />
                        }
                        <polyline points={points(&s.values)} />
                        { for s.values.iter().take(n).enumerate().map(|(i, v)| html! {
                            <circle cx={format!("{:.1}", x(i))} cy={format!("{:.1}", y(*v))} r={if n > 60 { "1" } else { "2.5" }}>
                                <title>{ format!("{}: {} ({})", s.labels.get(i).cloned().unwrap_or_default(), m.format(*v), s.name) }</title>
                            </circle>
                        }) }
                    </g>
                }) }
                <g class="axis">
                    <text x={LEFT.to_string()} y={(H - 4.0).to_string()}>{ label_at(0) }</text>
                    <text x={(LEFT + plot_w / 2.0).to_string()} y={(H - 4.0).to_string()} text-anchor="middle">{ label_at(last / 2) }</text>
                    <text x={W.to_string()} y={(H - 4.0).to_string()} text-anchor="end">{ label_at(last) }</text>
                </g>
            </svg>
            <figcaption class="legend">
                { for props.series.iter().map(|s| html! {
                    <span class={classes!("key", s.class)}><span class="swatch" aria-hidden="true"></span>{ legend(s) }</span>
                }) }
            </figcaption>
        </figure>
    }
}
