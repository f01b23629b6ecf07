//! Shared helpers: a collector on `127.0.0.1:0` over a [`MemorySink`], and a tiny client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use collector::salt::EphemeralSalts;
use collector::sinks::MemorySink;
use collector::{Collector, CollectorConfig};
use footfall_http::{serve, ServerLimits};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::oneshot;

pub const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

pub struct TestCollector {
    pub addr: SocketAddr,
    pub sink: MemorySink,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestCollector {
    pub async fn start(config: CollectorConfig) -> Self {
        let sink = MemorySink::new();
        let collector = Collector::new(
            config,
            Arc::new(sink.clone()),
            Arc::new(EphemeralSalts::default()),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(
                listener,
                Arc::new(collector),
                ServerLimits::default(),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .expect("serve");
        });
        TestCollector {
            addr,
            sink,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn default() -> Self {
        Self::start(CollectorConfig::default()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body.into())).expect("request");
    let resp = client.request(req).await.expect("response");
    let (parts, body) = resp.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.expect("body").to_bytes(),
    }
}

pub async fn post_json(url: &str, body: &str) -> Reply {
    send(
        Method::POST,
        url,
        &[("content-type", "application/json"), ("user-agent", CHROME)],
        body.to_string(),
    )
    .await
}

pub async fn post_beacon(url: &str, body: &str) -> Reply {
    send(
        Method::POST,
        url,
        &[
            ("content-type", "text/plain;charset=UTF-8"),
            ("user-agent", CHROME),
        ],
        body.to_string(),
    )
    .await
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}
