//! The WebSocket gateway over real sockets: authentication before the upgrade, snapshot then
//! ticks, slow clients, and many clients at once.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fastwebsockets::{handshake, FragmentCollector, OpCode, WebSocket, WebSocketError};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use processor::live::{deltas_of, Gateway, GatewayLimits, LiveHub};
use processor::store::SqliteConfig;
use processor::{AdminToken, ProcessorHttp, SqliteStore, StatsApi};
use protocol::live::ServerMessage;
use protocol::Event;

const TOKEN: &str = "gateway-test-token";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn event(site: &str, path: &str, visitor: &str) -> Event {
    Event {
        visitor_id: visitor.into(),
        path: path.into(),
        country: Some("DE".into()),
        region: None,
        city: None,
        ..common::data::event(
            format!("{visitor}-{path}-{}", now_ms()),
            site,
            "page_view",
            now_ms(),
        )
    }
}

struct Server {
    addr: SocketAddr,
    hub: LiveHub,
    _data: tempfile::TempDir,
}

async fn start(limits: GatewayLimits) -> Server {
    let hub = LiveHub::default();
    tokio::spawn(hub.clone().run_publisher());
    let token = AdminToken::new(TOKEN);
    let data = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(SqliteConfig::new(data.path())).expect("store");
    let http = ProcessorHttp::new(
        StatsApi::new(Arc::new(store), token.clone()),
        Gateway::new(hub.clone(), token, limits),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let http = http.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let http = http.clone();
                    async move { Ok::<_, Infallible>(http.handle(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Server {
        addr,
        hub,
        _data: data,
    }
}

type Client = FragmentCollector<TokioIo<Upgraded>>;

async fn connect(
    addr: SocketAddr,
    path: &str,
    bearer: Option<&str>,
) -> Result<Client, WebSocketError> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let mut req = Request::builder()
        .method("GET")
        .uri(format!("http://{addr}{path}"))
        .header("Host", addr.to_string())
        .header("Upgrade", "websocket")
        .header("Connection", "upgrade")
        .header("Sec-WebSocket-Key", handshake::generate_key())
        .header("Sec-WebSocket-Version", "13");
    if let Some(token) = bearer {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    let req = req.body(Empty::<Bytes>::new()).expect("request");
    let (ws, _): (WebSocket<TokioIo<Upgraded>>, _) =
        handshake::client(&TokioExecutor::new(), req, stream).await?;
    Ok(FragmentCollector::new(ws))
}

async fn next_message(ws: &mut Client) -> ServerMessage {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.read_frame())
            .await
            .expect("a message within 5 s")
            .expect("frame");
        match frame.opcode {
            OpCode::Text => return serde_json::from_slice(&frame.payload).expect("server message"),
            OpCode::Close => panic!("closed by server"),
            _ => continue,
        }
    }
}

async fn post_ticket(addr: SocketAddr, bearer: &str) -> (u16, serde_json::Value) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::builder()
        .method("POST")
        .uri("/api/ws-ticket")
        .header("Host", addr.to_string())
        .header("Authorization", format!("Bearer {bearer}"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn unauthenticated_upgrades_are_refused_before_upgrading() {
    let server = start(GatewayLimits::default()).await;
    for (path, bearer) in [
        ("/ws?site=s", None),
        ("/ws?site=s", Some("wrong")),
        ("/ws?site=s&ticket=made-up", None),
    ] {
        match connect(server.addr, path, bearer).await {
            Err(WebSocketError::InvalidStatusCode(401)) => {}
            Err(e) => panic!("{path}: expected 401, got {e}"),
            Ok(_) => panic!("{path}: upgraded without credentials"),
        }
    }
    match connect(server.addr, "/ws", Some(TOKEN)).await {
        Err(WebSocketError::InvalidStatusCode(400)) => {}
        other => panic!("missing site: expected 400, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn tickets_work_once() {
    let server = start(GatewayLimits::default()).await;
    assert_eq!(post_ticket(server.addr, "wrong").await.0, 401);
    let (status, body) = post_ticket(server.addr, TOKEN).await;
    assert_eq!(status, 200);
    let ticket = body["ticket"].as_str().expect("ticket").to_string();
    let path = format!("/ws?site=s&ticket={ticket}");
    let mut ws = connect(server.addr, &path, None)
        .await
        .expect("ticket accepted");
    assert!(matches!(
        next_message(&mut ws).await,
        ServerMessage::Snapshot(_)
    ));
    assert!(matches!(
        connect(server.addr, &path, None).await,
        Err(WebSocketError::InvalidStatusCode(401))
    ));
}

#[tokio::test]
async fn snapshot_then_ticks_with_new_feed_events() {
    let server = start(GatewayLimits::default()).await;
    server
        .hub
        .apply(&deltas_of(&[event("shop", "/before", "v0")]));
    let mut ws = connect(server.addr, "/ws?site=shop", Some(TOKEN))
        .await
        .expect("connect");
    let ServerMessage::Snapshot(snapshot) = next_message(&mut ws).await else {
        panic!("first message is a snapshot")
    };
    assert_eq!(snapshot.site, "shop");
    assert_eq!(snapshot.metrics.active_visitors, 1);
    assert_eq!(snapshot.feed.len(), 1);

    let sent = std::time::Instant::now();
    server.hub.apply(&deltas_of(&[
        event("shop", "/pricing", "v1"),
        event("other", "/", "x"),
    ]));
    let ServerMessage::Tick(tick) = next_message(&mut ws).await else {
        panic!("then ticks")
    };
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "seen within a second"
    );
    assert_eq!(tick.metrics.active_visitors, 2);
    assert_eq!(tick.metrics.today.pageviews, 2);
    let paths: Vec<&str> = tick.feed.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/pricing"],
        "a tick carries only feed events the client has not seen"
    );
    assert!(tick
        .metrics
        .recent
        .pages
        .iter()
        .any(|c| c.key == "/pricing"));
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_does_not_grow_memory_or_slow_others() {
    let server = start(GatewayLimits {
        write_timeout: Duration::from_secs(2),
        ..Default::default()
    })
    .await;
    // The stalled client connects and then never reads a byte.
    let _stalled = connect(server.addr, "/ws?site=busy", Some(TOKEN))
        .await
        .expect("connect");
    let mut reader = connect(server.addr, "/ws?site=busy", Some(TOKEN))
        .await
        .expect("connect");
    next_message(&mut reader).await;

    let rss_before = rss_kib();
    let hub = server.hub.clone();
    let producer = tokio::spawn(async move {
        // 4 s of traffic with ever new pages, so every state differs and messages are big.
        let until = std::time::Instant::now() + Duration::from_secs(4);
        let mut i = 0u64;
        while std::time::Instant::now() < until {
            let batch: Vec<Event> = (0..50)
                .map(|j| {
                    event(
                        "busy",
                        &format!("/page/{i}/{j}/{}", "x".repeat(100)),
                        &format!("v{i}-{j}"),
                    )
                })
                .collect();
            hub.apply(&deltas_of(&batch));
            i += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let mut ticks = 0;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        if let ServerMessage::Tick(_) = next_message(&mut reader).await {
            ticks += 1;
        }
    }
    producer.await.expect("producer");
    let grown_mib = rss_kib().saturating_sub(rss_before) / 1024;
    // Ticks are paced at ≤ 5/s: over 4 s the reading client must have had most of them.
    assert!(
        ticks >= 12,
        "the reading client got only {ticks} ticks in 4 s"
    );
    assert!(
        grown_mib < 64,
        "memory grew by {grown_mib} MiB with a stalled client"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_receive_ticks() {
    let server = start(GatewayLimits::default()).await;
    let mut tasks = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(200);
    for _ in 0..200 {
        let addr = server.addr;
        let ready = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut ws = connect(addr, "/ws?site=crowd", Some(TOKEN))
                .await
                .expect("connect");
            assert!(matches!(
                next_message(&mut ws).await,
                ServerMessage::Snapshot(_)
            ));
            ready.send(()).await.expect("ready");
            loop {
                if let ServerMessage::Tick(t) = next_message(&mut ws).await {
                    if t.metrics.active_visitors == 1 {
                        return t.feed.len();
                    }
                }
            }
        }));
    }
    for _ in 0..200 {
        ready_rx.recv().await.expect("client ready");
    }
    server.hub.apply(&deltas_of(&[event("crowd", "/", "v1")]));
    for t in tasks {
        let feed = tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .expect("tick in time")
            .expect("client task");
        assert_eq!(feed, 1);
    }
}
