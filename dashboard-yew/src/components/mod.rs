//! Presentational components, one per file with its `Props` right above it. They get data
//! and `Callback`s, never the reducer: only `App` owns state.

mod bar_list;
mod breakdown_table;
mod column_chart;
mod donut;
mod feed;
mod history_view;
mod install_hint;
mod line_chart;
mod live_view;
mod login;
mod sites_view;
mod stat_card;
mod status;
mod top_bar;

pub use bar_list::BarList;
pub use breakdown_table::BreakdownTable;
pub use column_chart::{Column, ColumnChart};
pub use donut::Donut;
pub use feed::Feed;
pub use history_view::HistoryView;
pub use install_hint::InstallHint;
pub use line_chart::{LineChart, Series};
pub use live_view::LiveView;
pub use login::Login;
pub use sites_view::SitesView;
pub use stat_card::StatCard;
pub use status::Status;
pub use top_bar::TopBar;
