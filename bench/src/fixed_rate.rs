//! An open-loop load generator: `/api/batch` beacons at a fixed request rate, with latency
//! percentiles that count the time a request had to wait for its turn (no coordinated
//! omission), like wrk2. `wrk` measures maximum throughput; this measures latency at a given
//! load — "p99 at half the maximum" — and holds a steady rate for the memory benchmark.
//!
//! ```text
//! fixed-rate --url http://127.0.0.1:8080/api/batch --rate 5000 [--duration 10]
//!            [--connections 32] [--events 5] [--site bench.test]
//! ```
//! Request `i` is due at `start + i / rate` on connection `i mod connections`. Its latency
//! runs from when it was due if its connection was still busy then (the server's backlog is
//! the server's), and from when it was actually sent otherwise (the generator's own timer
//! granularity, up to a millisecond, is not the server's). Bodies are the ingest
//! benchmark's (`bench/ingest.lua`): 5 page views with unique event ids, text/plain, a
//! browser user agent. Prints one line of `key=value` pairs for scripts to read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::sync::Mutex;

struct Args {
    url: String,
    rate: f64,
    duration: Duration,
    connections: usize,
    events: usize,
    site: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: "http://127.0.0.1:8080/api/batch".into(),
        rate: 1000.0,
        duration: Duration::from_secs(10),
        connections: 32,
        events: 5,
        site: "bench.test".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || value.parse::<f64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--url" => args.url = value.clone(),
            "--rate" => args.rate = num()?.max(1.0),
            "--duration" => args.duration = Duration::from_secs_f64(num()?.max(0.1)),
            "--connections" => args.connections = (num()? as usize).max(1),
            "--events" => args.events = (num()? as usize).clamp(1, 100),
            "--site" => args.site = value.clone(),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// `http://host:port/path` → (`host:port`, `/path`).
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok((authority.to_string(), path.to_string()))
}

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

fn body(site: &str, prefix: &str, n: u64, events: usize) -> String {
    let mut out = format!(r#"{{"site":"{site}","events":["#);
    for i in 1..=events {
        if i > 1 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"event":"page_view","eventId":"{prefix}-{n:09}-{i}","page":"https://{site}/p/{}?utm_source=rate","sessionId":"s{}","timezone":"Europe/Berlin"}}"#,
            n % 50,
            n % 1000
        ));
    }
    out.push_str("]}");
    out
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    non_2xx: u64,
    errors: u64,
}

async fn connection(
    args: Arc<Args>,
    index: usize,
    start: Instant,
    total: u64,
    prefix: Arc<String>,
    tally: Arc<Mutex<Tally>>,
) {
    let Ok((authority, path)) = split_url(&args.url) else {
        return;
    };
    let mut local = Tally::default();
    let mut sender = None;
    let mut prev_done = start;
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let mut i = index as u64;
    while i < total {
        let due = start + period.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let sent = Instant::now();
        // Busy at the due time: the wait is the server's backlog and counts.
        let from = if prev_done > due { due } else { sent };
        if sender.is_none() {
            match tokio::net::TcpStream::connect(&authority).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    match http1::handshake(TokioIo::new(stream)).await {
                        Ok((s, conn)) => {
                            tokio::spawn(conn);
                            sender = Some(s);
                        }
                        Err(_) => local.errors += 1,
                    }
                }
                Err(_) => local.errors += 1,
            }
        }
        let Some(s) = sender.as_mut() else {
            i += args.connections as u64;
            continue;
        };
        let req = Request::post(path.as_str())
            .header("host", authority.as_str())
            .header("content-type", "text/plain;charset=UTF-8")
            .header("user-agent", UA)
            .body(Full::new(Bytes::from(body(
                &args.site,
                &prefix,
                i,
                args.events,
            ))));
        let ok = match req {
            Ok(req) => match s.send_request(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    let _ = resp.into_body().collect().await;
                    if !status.is_success() {
                        local.non_2xx += 1;
                    }
                    true
                }
                Err(_) => false,
            },
            Err(_) => false,
        };
        let done = Instant::now();
        prev_done = done;
        if ok {
            local
                .latencies_us
                .push(done.duration_since(from).as_micros() as u64);
        } else {
            local.errors += 1;
            sender = None;
        }
        i += args.connections as u64;
    }
    let mut t = tally.lock().await;
    t.latencies_us.extend(local.latencies_us);
    t.non_2xx += local.non_2xx;
    t.errors += local.errors;
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)] as f64 / 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = match parse_args() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("fixed-rate: {e}");
            std::process::exit(2);
        }
    };
    let total = (args.rate * args.duration.as_secs_f64()).round() as u64;
    let prefix = Arc::new(format!(
        "r{:08x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() ^ d.as_secs() as u32)
    ));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let start = Instant::now() + Duration::from_millis(50);
    let tasks: Vec<_> = (0..args.connections)
        .map(|k| {
            tokio::spawn(connection(
                args.clone(),
                k,
                start,
                total,
                prefix.clone(),
                tally.clone(),
            ))
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut t = tally.lock().await;
    t.latencies_us.sort_unstable();
    let l = &t.latencies_us;
    println!(
        "requests={} rate_achieved={:.0} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} max_ms={:.2} non_2xx={} errors={}",
        l.len(),
        l.len() as f64 / elapsed.max(1e-9),
        percentile(l, 0.50),
        percentile(l, 0.90),
        percentile(l, 0.99),
        percentile(l, 1.0),
        t.non_2xx,
        t.errors
    );
}
