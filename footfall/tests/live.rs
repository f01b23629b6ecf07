//! The live feed end to end on the real binary: an event posted over HTTP shows up on a
//! dashboard's WebSocket within a second (the original product's promise).

mod common;

use std::time::{Duration, Instant};

use common::live::LiveClient;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_sees_the_event_it_caused_within_a_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ff = tokio::task::block_in_place(|| {
        let ff = Footfall::start(dir.path(), &[]);
        ff.add_site("live.test");
        ff
    });
    let (mut live, snapshot) = LiveClient::connect(&ff.base, "live.test").await;
    assert_eq!(snapshot.metrics.active_visitors, 0);

    let posted = Instant::now();
    let url = ff.url("/api/batch");
    let (status, _) = tokio::task::spawn_blocking(move || {
        post(
            &url,
            "text/plain",
            r#"{"site":"live.test","events":[{"event":"page_view","page":"https://live.test/hello","timezone":"Europe/Paris"}]}"#,
        )
    })
    .await
    .expect("post");
    assert_eq!(status, 202);

    let tick = live
        .until(Duration::from_secs(2), |t| {
            t.feed.iter().any(|f| f.path == "/hello")
        })
        .await
        .expect("a tick with the event within 2 s");
    assert!(
        posted.elapsed() < Duration::from_secs(1),
        "{:?}",
        posted.elapsed()
    );
    let f = tick
        .feed
        .iter()
        .find(|f| f.path == "/hello")
        .expect("feed event");
    assert_eq!(f.country.as_deref(), Some("FR"));
    assert_eq!(tick.metrics.active_visitors, 1);
    assert_eq!(tick.metrics.today.pageviews, 1);
    tokio::task::block_in_place(|| drop(ff));
}
