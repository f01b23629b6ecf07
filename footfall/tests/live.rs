//! The live feed end to end on the real binary: an event posted over HTTP shows up on a
//! dashboard's WebSocket within a second (the original product's promise).

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use fastwebsockets::{handshake, FragmentCollector, OpCode};
use http_body_util::Empty;
use hyper::Request;
use protocol::live::ServerMessage;

struct SpawnExecutor;

impl<Fut> hyper::rt::Executor<Fut> for SpawnExecutor
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    fn execute(&self, fut: Fut) {
        tokio::spawn(fut);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_sees_the_event_it_caused_within_a_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ff = tokio::task::block_in_place(|| Footfall::start(dir.path(), &[]));
    let authority = ff.base.trim_start_matches("http://").to_string();

    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .expect("connect");
    let req = Request::builder()
        .uri(ff.url("/ws?site=live.test"))
        .header("Host", &authority)
        .header("Upgrade", "websocket")
        .header("Connection", "upgrade")
        .header("Sec-WebSocket-Key", handshake::generate_key())
        .header("Sec-WebSocket-Version", "13")
        .header("Authorization", format!("Bearer {TOKEN}"))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let (ws, _) = handshake::client(&SpawnExecutor, req, stream)
        .await
        .expect("upgrade");
    let mut ws = FragmentCollector::new(ws);
    let first = ws.read_frame().await.expect("snapshot");
    assert!(matches!(
        serde_json::from_slice::<ServerMessage>(&first.payload),
        Ok(ServerMessage::Snapshot(_))
    ));

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

    loop {
        let frame = tokio::time::timeout(Duration::from_secs(2), ws.read_frame())
            .await
            .expect("a tick within 2 s")
            .expect("frame");
        if frame.opcode != OpCode::Text {
            continue;
        }
        if let Ok(ServerMessage::Tick(tick)) = serde_json::from_slice(&frame.payload) {
            if let Some(f) = tick.feed.iter().find(|f| f.path == "/hello") {
                assert!(
                    posted.elapsed() < Duration::from_secs(1),
                    "{:?}",
                    posted.elapsed()
                );
                assert_eq!(f.country.as_deref(), Some("FR"));
                assert_eq!(tick.metrics.active_visitors, 1);
                assert_eq!(tick.metrics.today.pageviews, 1);
                break;
            }
        }
    }
    tokio::task::block_in_place(|| drop(ff));
}
