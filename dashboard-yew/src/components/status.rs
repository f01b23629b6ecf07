use yew::prelude::*;

use crate::state::Conn;

#[derive(Properties, PartialEq)]
pub struct StatusProps {
    pub conn: Conn,
}

/// The live connection indicator. `data-status` is the machine-readable state.
#[component]
pub fn Status(props: &StatusProps) -> Html {
    let secs = |ms: u32| ms.div_ceil(1000);
    let text = match props.conn {
        Conn::Idle => "Not connected".to_string(),
        Conn::Connecting => "Connecting…".to_string(),
        Conn::Live => "Live".to_string(),
        Conn::Reconnecting { attempt, retry_ms } => {
            format!(
                "Reconnecting (attempt {attempt}, next in {} s)",
                secs(retry_ms)
            )
        }
        Conn::Offline { retry_ms, .. } => format!("Offline, retrying in {} s", secs(retry_ms)),
        Conn::Incompatible { version } => {
            format!("The server was updated (live protocol v{version}): reload the page")
        }
    };
    html! {
        <span id="status" class={classes!("status", props.conn.key())} data-status={props.conn.key()}
            role="status" aria-live="polite">
            <span class="dot" aria-hidden="true"></span>{ text }
        </span>
    }
}
