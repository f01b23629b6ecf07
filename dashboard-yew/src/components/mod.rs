//! Presentational components, one per file with its `Props` right above it. They get data
//! and `Callback`s, never the reducer: only `App` owns state.

mod bar_list;
mod breakdown_table;
mod column_chart;
mod donut;
mod feed;
mod filter_bar;
mod goals_panel;
mod history_view;
mod install_hint;
mod line_chart;
mod live_view;
mod login;
mod prop_panel;
mod range_picker;
mod share_panel;
mod sites_view;
mod stat_card;
mod status;
mod top_bar;

pub use bar_list::BarList;
pub use breakdown_table::BreakdownTable;
pub use column_chart::{Column, ColumnChart};
pub use donut::Donut;
pub use feed::Feed;
pub use filter_bar::FilterBar;
pub use goals_panel::GoalsPanel;
pub use history_view::HistoryView;
pub use install_hint::InstallHint;
pub use line_chart::{LineChart, Series};
pub use live_view::LiveView;
pub use login::Login;
pub use prop_panel::PropPanel;
pub use range_picker::RangePicker;
pub use share_panel::SharePanel;
pub use sites_view::SitesView;
pub use stat_card::{Change, StatCard};
pub use status::Status;
pub use top_bar::TopBar;

use yew::prelude::*;

/// A row's key: a button that filters by it when `on_pick` is given (reachable by keyboard),
/// else plain text.
fn pick_key(key: &str, on_pick: Option<&Callback<String>>) -> Html {
    match on_pick {
        Some(pick) => {
            let value = key.to_string();
            html! {
                <button type="button" class="key pick" title={format!("Filter by {key}")}
                    onclick={pick.reform(move |_: MouseEvent| value.clone())}>{ key.to_string() }</button>
            }
        }
        None => html! { <span class="key">{ key.to_string() }</span> },
    }
}
