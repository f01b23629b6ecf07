//! End-to-end live latency: from the HTTP request that carries an event to the WebSocket
//! message that shows it, measured by one process that does both ends.
//!
//! ```text
//! live-latency --base http://127.0.0.1:8080 --token T [--events 1000] [--site S]
//!              [--idle 0] [--active 1] [--gap-ms 10] [--ingest http://collector:8080]
//! ```
//! `--base` is where the WebSocket is (standalone, or a processor); `--ingest` where events
//! are posted (default: `--base`; a collector in distributed mode).
//! `--idle N` opens N extra connections on a quiet site and `--active N` N readers on the
//! measured site, to show what fan-out costs. Prints p50/p95/p99 in milliseconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fastwebsockets::{handshake, FragmentCollector, OpCode};
use http_body_util::{Empty, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use protocol::live::ServerMessage;

struct Args {
    base: String,
    ingest: Option<String>,
    token: String,
    events: usize,
    site: String,
    idle: usize,
    active: usize,
    gap: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        base: "http://127.0.0.1:8080".into(),
        ingest: None,
        token: String::new(),
        events: 1000,
        site: "latency.bench".into(),
        idle: 0,
        active: 1,
        gap: Duration::from_millis(10),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || value.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--base" => args.base = value.trim_end_matches('/').to_string(),
            "--token" => args.token = value,
            "--ingest" => args.ingest = Some(value.trim_end_matches('/').to_string()),
            "--events" => args.events = num()?,
            "--site" => args.site = value,
            "--idle" => args.idle = num()?,
            "--active" => args.active = num()?.max(1),
            "--gap-ms" => args.gap = Duration::from_millis(num()? as u64),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

type Ws = FragmentCollector<TokioIo<hyper::upgrade::Upgraded>>;

async fn connect(args: &Args, site: &str) -> Result<Ws, Box<dyn std::error::Error>> {
    let authority = args.base.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&authority).await?;
    let req = Request::builder()
        .uri(format!("{}/ws?site={site}", args.base))
        .header("Host", &authority)
        .header("Upgrade", "websocket")
        .header("Connection", "upgrade")
        .header("Sec-WebSocket-Key", handshake::generate_key())
        .header("Sec-WebSocket-Version", "13")
        .header("Authorization", format!("Bearer {}", args.token))
        .body(Empty::<Bytes>::new())?;
    let (ws, _) = handshake::client(&TokioExecutor::new(), req, stream).await?;
    Ok(FragmentCollector::new(ws))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Arc::new(parse_args()?);
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    // Set once any event made it to the socket: the pipeline is warm (in distributed mode a
    // processor must first join its consumer group, which takes seconds).
    let warm = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let mut idle = Vec::new();
    for _ in 0..args.idle {
        idle.push(connect(&args, "idle.bench").await?);
    }
    // Readers: the first measures, the others only load the fan-out.
    for reader in 0..args.active {
        let mut ws = connect(&args, &args.site).await?;
        let sent = sent.clone();
        let latencies = latencies.clone();
        let warm = warm.clone();
        tokio::spawn(async move {
            while let Ok(frame) = ws.read_frame().await {
                if frame.opcode != OpCode::Text || reader != 0 {
                    continue;
                }
                let Ok(ServerMessage::Tick(update)) = serde_json::from_slice(&frame.payload) else {
                    continue;
                };
                let now = Instant::now();
                if !update.feed.is_empty() {
                    warm.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                let sent = sent.lock().map(|s| s.clone()).unwrap_or_default();
                let mut out = latencies.lock().expect("latencies");
                for f in update.feed {
                    if let Some(at) = sent.get(&f.path) {
                        out.push(now.duration_since(*at).as_secs_f64() * 1000.0);
                    }
                }
            }
        });
    }

    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    // Events are accepted only for registered sites: register the measured one (a second
    // registration is a harmless 200).
    let register = Request::post(format!("{}/api/sites", args.base))
        .header("Authorization", format!("Bearer {}", args.token))
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(format!(
            r#"{{"site":"{}"}}"#,
            args.site
        ))))?;
    let registered = client.request(register).await?.status();
    if !registered.is_success() {
        return Err(format!("cannot register {}: HTTP {registered}", args.site).into());
    }
    let ingest = args.ingest.as_deref().unwrap_or(&args.base);
    let url: hyper::Uri = format!("{ingest}/api/track").parse()?;
    let run_id = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let post = |path: String| {
        let body = format!(
            r#"{{"event":"page_view","site":"{}","page":"{path}","sessionId":"bench","userAgent":"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"}}"#,
            args.site
        );
        Request::post(url.clone())
            .header("Content-Type", "application/json")
            .body(Full::new(Bytes::from(body)))
    };
    let warm_until = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    while !warm.load(std::sync::atomic::Ordering::SeqCst) {
        if Instant::now() > warm_until {
            return Err("no event reached the WebSocket within 60 s".into());
        }
        client
            .request(post(format!("/warmup/{run_id}/{n}"))?)
            .await?;
        n += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for i in 0..args.events {
        let path = format!("/lat/{run_id}/{i}");
        let body = format!(
            r#"{{"event":"page_view","site":"{}","page":"{path}","sessionId":"bench","userAgent":"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"}}"#,
            args.site
        );
        let req = Request::post(url.clone())
            .header("Content-Type", "application/json")
            .body(Full::new(Bytes::from(body)))?;
        sent.lock()
            .map_err(|_| "lock")?
            .insert(path, Instant::now());
        let resp = client.request(req).await?;
        if !resp.status().is_success() {
            return Err(format!("event {i}: HTTP {}", resp.status()).into());
        }
        tokio::time::sleep(args.gap).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut l = latencies.lock().map_err(|_| "lock")?.clone();
    l.sort_by(|a, b| a.total_cmp(b));
    println!(
        "events={} seen={} idle={} active={} p50_ms={:.1} p95_ms={:.1} p99_ms={:.1}",
        args.events,
        l.len(),
        args.idle,
        args.active,
        percentile(&l, 50.0),
        percentile(&l, 95.0),
        percentile(&l, 99.0)
    );
    drop(idle);
    Ok(())
}
