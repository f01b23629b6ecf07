//! The live-metrics feed: what the WebSocket gateway (`/ws?site=S`) sends to dashboards.
//! Documented for client authors in `docs/LIVE.md`.
//!
//! Every server message is a JSON object with `type` and the protocol version `v`. A client
//! that sees a `v` it does not know must stop and reload rather than guess. The state is
//! small, so every `snapshot` and `tick` carries all of it: a client that missed ticks (slow
//! network, lagging tab) is correct again with the next one — nothing is ever "applied on top"
//! of an older message. Only the feed is incremental, ordered by `seq`; a client that sees a
//! gap simply shows what it got, and a `snapshot` (sent on connect and on `resync`) brings the
//! latest 50 feed events again.

use serde::{Deserialize, Serialize};

/// Version of the live protocol. Bump on any change a client must know about.
pub const LIVE_PROTOCOL_VERSION: u32 = 1;

/// How many entries each breakdown list carries.
pub const TOP_N: usize = 10;
/// How many events the live feed keeps.
pub const FEED_LEN: usize = 50;
/// Minutes of the per-minute series.
pub const SERIES_MINUTES: usize = 60;
/// The window of "active visitors".
pub const ACTIVE_WINDOW_MINUTES: usize = 5;
/// The window of the "last 30 minutes" breakdowns.
pub const RECENT_WINDOW_MINUTES: usize = 30;

/// Server → client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The whole state, on connect and after a `resync` request.
    Snapshot(LiveUpdate),
    /// The whole state again, at most a few per second and only when something changed,
    /// plus the feed events the client has not seen yet.
    Tick(LiveUpdate),
    /// The server is closing this connection on purpose (shutdown, idle, too slow).
    Bye { v: u32, reason: String },
}

/// Client → server (optional; clients that only listen never send anything but pongs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Ask for a fresh snapshot (e.g. after the tab was hidden for a while).
    Resync,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveUpdate {
    pub v: u32,
    pub site: String,
    /// Server time of this state, ms since the epoch.
    pub at: i64,
    pub metrics: LiveMetrics,
    /// Feed events newer than the last this client got (all of them in a snapshot), oldest
    /// first.
    pub feed: Vec<FeedEvent>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveMetrics {
    /// Distinct visitors in the last 5 minutes (HyperLogLog estimate, error well under 2 %).
    pub active_visitors: u64,
    /// The last 60 minutes, oldest first, one point per minute (empty minutes included).
    pub per_minute: Vec<MinutePoint>,
    /// Breakdowns over the last 30 minutes.
    pub recent: Breakdowns,
    /// Totals and breakdowns since UTC midnight.
    pub today: Totals,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub pageviews: u64,
    pub visitors: u64,
    pub events: u64,
    pub breakdowns: Breakdowns,
    /// Visits of today (UTC) and their metrics, defined as in the stats API's summary
    /// (`docs/API.md`), read from the store's visits every few seconds. Added in version 1
    /// without a bump: older servers omit them (read as 0).
    #[serde(default)]
    pub visits: u64,
    #[serde(default)]
    pub bounce_rate: f64,
    #[serde(default)]
    pub visit_duration: u64,
    #[serde(default)]
    pub views_per_visit: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MinutePoint {
    /// Start of the minute, ms since the epoch.
    pub minute: i64,
    pub pageviews: u64,
    pub visitors: u64,
}

/// Top entries per dimension, most frequent first, at most [`TOP_N`] each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Breakdowns {
    pub pages: Vec<Count>,
    pub entry_pages: Vec<Count>,
    pub referrers: Vec<Count>,
    pub utm_sources: Vec<Count>,
    pub devices: Vec<Count>,
    pub browsers: Vec<Count>,
    pub os: Vec<Count>,
    pub countries: Vec<Count>,
    /// Custom events (every name other than page_view, click, session_start, session_end).
    pub custom_events: Vec<Count>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub key: String,
    pub count: u64,
}

/// One event of the live feed. Deliberately without visitor, user or session ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedEvent {
    /// Increasing per site; tells a client which events it already has.
    pub seq: u64,
    pub ts: i64,
    pub event: String,
    pub path: String,
    pub device: String,
    pub browser: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_and_versioned() {
        let msg = ServerMessage::Tick(LiveUpdate {
            v: LIVE_PROTOCOL_VERSION,
            site: "s".into(),
            at: 1,
            metrics: LiveMetrics::default(),
            feed: vec![],
        });
        let json = serde_json::to_value(&msg).expect("json");
        assert_eq!(json["type"], "tick");
        assert_eq!(json["v"], 1);
        assert_eq!(json["metrics"]["activeVisitors"], 0);
        let back: ServerMessage = serde_json::from_value(json).expect("parse");
        assert_eq!(back, msg);
        let resync: ClientMessage = serde_json::from_str(r#"{"type":"resync"}"#).expect("parse");
        assert_eq!(resync, ClientMessage::Resync);
    }
}
