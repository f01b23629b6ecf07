use protocol::live::FeedEvent;
use yew::prelude::*;

use crate::shape::format_age;

#[derive(Properties, PartialEq)]
pub struct FeedProps {
    /// Newest first.
    pub events: Vec<FeedEvent>,
    /// Server time of the latest update, for "5 s ago".
    pub now: i64,
}

/// The live event feed.
#[component]
pub fn Feed(props: &FeedProps) -> Html {
    html! {
        <section class="card feed" aria-labelledby="feed-title">
            <h2 id="feed-title">{ "Live feed" }</h2>
            if props.events.is_empty() {
                <p class="muted">{ "Events appear here the moment they arrive." }</p>
            } else {
                <ol id="live-feed" aria-live="polite" aria-relevant="additions">
                    { for props.events.iter().map(|e| {
                        let mut detail = vec![e.device.clone(), e.browser.clone()];
                        detail.extend(e.country.clone());
                        detail.extend(e.referrer.as_ref().map(|r| format!("from {r}")));
                        html! {
                            <li key={e.seq} data-seq={e.seq.to_string()}>
                                <span class={classes!("event", (e.event == "page_view").then_some("pv"))}>{ e.event.clone() }</span>
                                <span class="path">{ e.path.clone() }</span>
                                <span class="muted small">{ detail.join(" · ") }</span>
                                <time class="muted small">{ format_age(e.ts, props.now) }</time>
                            </li>
                        }
                    }) }
                </ol>
            }
        </section>
    }
}
