//! Custom hooks: the only code besides `api::fetch` that talks to browser APIs (WebSocket,
//! timers, storage, the address bar, the clipboard). Each takes the root's reducer dispatcher and turns what happens into
//! `Action`s; none keeps state the UI reads.

mod use_admin;
mod use_history;
mod use_live_metrics;
mod use_session_token;
mod use_sites;
mod use_url_sync;

pub use use_admin::{export, use_goal_editor, use_share_links, use_site_registry};
pub use use_history::{use_history, HistoryQuery};
pub use use_live_metrics::use_live_metrics;
pub use use_session_token::{stored_token, use_session_token};
pub use use_sites::use_sites;
pub use use_url_sync::{location, use_url_sync};

/// Milliseconds since the epoch, from the browser's clock.
pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// The browser's UTC offset now, in minutes **east** of UTC (`+05:30` is 330): the sign the
/// server and `protocol::time` use. `Date.getTimezoneOffset()` counts the other way (UTC −
/// local), so this is the one place that flips it.
pub fn tz_offset_min() -> i32 {
    -(js_sys::Date::new_0().get_timezone_offset() as i32)
}

/// `http://host:port` of the page (the API is on the same origin).
pub fn origin() -> String {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default()
}
