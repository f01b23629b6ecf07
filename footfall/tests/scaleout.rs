//! Issue 14: scale-out for real, on one machine. A real Kafka-protocol broker (tansu), a real
//! MongoDB-protocol server (SecantusDB), two `footfall collector`s and three
//! `footfall processor`s, with nginx running `deploy/nginx.conf` — the file operators use —
//! as the load balancer in front of both tiers (ingest, and dashboard/API), round robin, no
//! stickiness. A fixed stream of events from many visitors is replayed through the balancer
//! and into one `footfall standalone`; one processor is killed with SIGKILL half-way. Then
//! the stored count and every history answer (summary, time series in three intervals and
//! offsets, every breakdown), asked three times through the balancer, equal standalone's; a
//! ticket from one processor opens a socket at another, once; and a dashboard session
//! through the balancer (ticket and socket each at whichever processor) reconnects when its
//! processor dies and keeps showing current numbers.
//!
//! The live numbers equal standalone's too, after the kill: a processor publishes each
//! batch's live deltas (tagged with the store's write) before it commits the batch's offsets,
//! and the store keeps a marker until they are out, so a batch the killed processor stored
//! but had not published is published by whichever processor gets it again, and gateways
//! apply each write once (`processor::live::LiveStore`). A second stream after the failure
//! then moves the dashboard exactly as it moves standalone.
//!
//! `FOOTFALL_SCALEOUT_PROCESSORS` (3) and `FOOTFALL_SCALEOUT_KILL` (1; 0: nobody is killed) are
//! for the benchmark. `FOOTFALL_SCALEOUT_EVENTS` sets the stream's size: 10,000 by default,
//! because the MongoDB-protocol server is written in Python: the whole deployment stores
//! 150-300 events/s on this shared 2-core machine (~1,300 before visit documents joined the
//! write transaction), and 20,000 events took 2.5-3.5 minutes; `bench/scaleout.sh` runs it
//! with 100,000. A processor killed in the middle of a batch's transaction leaves it open on
//! the server until the server reaps it (`transactionLifetimeLimitSeconds`, 60 s on mongod and
//! SecantusDB); the redelivered events of that batch conflict with it until then, so when the
//! kill lands mid-transaction the stream completes no sooner than a minute after it.

mod common;

use std::fs;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::kafka::{eventually, register_site, Service, Tansu};
use common::live::{ticket, Auth, LiveClient, Polled};
use common::mongo::MongoServer;
use common::*;
use protocol::live::{LiveMetrics, ServerMessage};

const SITE: &str = "scaleout.test";

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

// ---------------------------------------------------------------------------------------------
// nginx with deploy/nginx.conf

/// nginx, as our own process on loopback, running `deploy/nginx.conf` with its `# deployment`
/// lines pointed at the given collectors and processors (the same swap as the CDN test).
struct Nginx {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Nginx {
    fn start(collectors: &[u16], processors: &[u16]) -> Nginx {
        let bin = std::env::var_os("FOOTFALL_NGINX")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"));
        assert!(
            bin.is_file(),
            "nginx not found at {}: run .ci/install.sh (apt-get install nginx) or set FOOTFALL_NGINX",
            bin.display()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let site = Self::site_config(collectors, processors, port, &dir.path().join("cache"));
        fs::write(dir.path().join("footfall.conf"), site).expect("write site config");
        let d = dir.path().display();
        let root = fs::read_to_string("/proc/self/status")
            .map(|s| {
                s.lines()
                    .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
            })
            .unwrap_or(false);
        let main = format!(
            "{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 1024; }}\nhttp {{\n  access_log {d}/access.log;\n  \
             client_body_temp_path {d}/client_body;\n  proxy_temp_path {d}/proxy;\n  \
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
             scgi_temp_path {d}/scgi;\n  include {d}/footfall.conf;\n}}\n",
            user = if root { "user root;\n" } else { "" },
        );
        let conf = dir.path().join("nginx.conf");
        fs::write(&conf, main).expect("write nginx.conf");
        let child = Command::new(&bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nginx");
        let nginx = Nginx { child, port, dir };
        assert!(
            common::kafka::wait_port(port, true, Duration::from_secs(10)),
            "nginx did not listen:\n{}",
            nginx.logs()
        );
        nginx
    }

    /// `deploy/nginx.conf` for this machine: every `server` line of an upstream becomes the
    /// given addresses (same parameters), `listen` loopback without TLS, the cache in `cache`,
    /// and `/ws` answers say which processor took the socket (`X-Test-Upstream`).
    fn site_config(collectors: &[u16], processors: &[u16], port: u16, cache: &Path) -> String {
        let text = fs::read_to_string(repo_root().join("deploy/nginx.conf")).expect("read");
        let mut out = Vec::new();
        let mut upstream: Option<&[u16]> = None;
        let mut emitted = false;
        for line in text.lines() {
            let trimmed = line.trim();
            if let Some(rest) = trimmed.strip_prefix("upstream ") {
                upstream = match rest.split_whitespace().next() {
                    Some("footfall_collectors") => Some(collectors),
                    Some("footfall_processors") => Some(processors),
                    other => panic!("unknown upstream {other:?} in deploy/nginx.conf"),
                };
                emitted = false;
            }
            if !trimmed.ends_with("# deployment") {
                out.push(line.to_string());
                if trimmed == "location = /ws {" {
                    out.push("        add_header X-Test-Upstream $upstream_addr always;".into());
                }
                continue;
            }
            let directive = trimmed.split_whitespace().next().unwrap_or("");
            match directive {
                "server" => {
                    let ports = upstream.expect("a server line outside an upstream");
                    if !emitted {
                        // The line's parameters (max_fails, ...) after the address.
                        let params: Vec<&str> = trimmed
                            .trim_end_matches("# deployment")
                            .trim()
                            .trim_end_matches(';')
                            .split_whitespace()
                            .skip(2)
                            .collect();
                        for p in ports {
                            out.push(format!("    server 127.0.0.1:{p} {};", params.join(" ")));
                        }
                        emitted = true;
                    }
                }
                "listen" => out.push(format!("    listen 127.0.0.1:{port};")),
                d if d.starts_with("ssl_") => {}
                "proxy_cache_path" => {
                    let rest = trimmed
                        .trim_end_matches("# deployment")
                        .trim()
                        .split_once(' ')
                        .map(|(_, r)| r.split_once(' ').map_or("", |(_, r)| r))
                        .unwrap_or("");
                    out.push(format!("proxy_cache_path {} {rest}", cache.display()));
                }
                other => panic!("unexpected deployment line in deploy/nginx.conf: {other}"),
            }
        }
        out.join("\n")
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn logs(&self) -> String {
        ["error.log"]
            .iter()
            .map(|f| fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: the master then stops its workers. Killed outright, it leaves
        // them running, orphaned, still holding the listening socket.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The fixed stream

const UAS: [&str; 4] = [
    CHROME,
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15",
];
const ZONES: [&str; 5] = [
    "Europe/Berlin",
    "Asia/Kolkata",
    "America/New_York",
    "Asia/Tokyo",
    "America/Sao_Paulo",
];
const REFERRERS: [&str; 4] = [
    "https://news.ycombinator.com/item?id=1",
    "https://www.google.com/",
    "https://t.co/x",
    "",
];

/// One request of the stream: a visitor's user agent and a batch body.
struct Request {
    ua: &'static str,
    body: String,
}

/// `events` events of `visitors` identified visitors (`userId`, so visitor ids do not depend
/// on either deployment's daily salt), over the 30 minutes before `now`, in lanes of
/// visitors (a lane sends its visitors' batches in order). Deterministic.
fn stream(
    prefix: &str,
    events: usize,
    visitors: usize,
    lanes: usize,
    now: i64,
) -> Vec<Vec<Request>> {
    let per_visitor = events.div_ceil(visitors);
    let span = 30 * 60_000;
    let mut out: Vec<Vec<Request>> = (0..lanes).map(|_| Vec::new()).collect();
    let mut made = 0;
    for v in 0..visitors {
        let n = per_visitor.min(events - made);
        if n == 0 {
            break;
        }
        let start = now - span + (v as i64 * 7919) % (span - 5 * 60_000);
        let zone = ZONES[v % ZONES.len()];
        let referrer = REFERRERS[v % REFERRERS.len()];
        let mut batch = Vec::new();
        for i in 0..n {
            let ts = start + i as i64 * 4_000;
            let page = (v * 7 + i * 3) % 60;
            let utm = if v % 9 == 0 {
                "?utm_source=newsletter"
            } else {
                ""
            };
            let name = match i % 10 {
                0 => "session_start",
                3 | 7 => "click",
                9 if v % 4 == 0 => "signup",
                _ => "page_view",
            };
            let referrer = if i == 1 && !referrer.is_empty() {
                format!(r#","referrer":"{referrer}""#)
            } else {
                String::new()
            };
            batch.push(format!(
                r#"{{"event":"{name}","eventId":"{prefix}-{v:05}-{i:04}","userId":"user-{v}","sessionId":"s-{v}-{}","page":"https://{SITE}/p/{page}{utm}","timezone":"{zone}","timestamp":{ts}{referrer}}}"#,
                i / 25
            ));
            if batch.len() == 20 || i + 1 == n {
                out[v % lanes].push(Request {
                    ua: UAS[v % UAS.len()],
                    body: format!(r#"{{"site":"{SITE}","events":[{}]}}"#, batch.join(",")),
                });
                batch.clear();
            }
        }
        made += n;
    }
    out
}

/// POSTs `body` until it is accepted (202), retrying 503s like the tracker; panics on
/// anything else.
fn send(url: &str, request: &Request) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let resp = ureq::post(url)
            .set("Content-Type", "text/plain")
            .set("User-Agent", request.ua)
            .send_string(&request.body);
        match resp {
            Ok(r) if r.status() == 202 => return,
            Err(ureq::Error::Status(503 | 502, _)) | Err(ureq::Error::Transport(_)) => {}
            Ok(r) => panic!("{url}: {}", r.status()),
            Err(ureq::Error::Status(s, r)) => {
                panic!("{url}: {s} {}", r.into_string().unwrap_or_default())
            }
        }
        assert!(Instant::now() < deadline, "{url} never accepted a batch");
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------------------------
// A dashboard session through the balancer

#[derive(Default)]
struct Session {
    /// Sockets opened (1 + reconnects).
    sockets: usize,
    /// Processors (`X-Test-Upstream`) that held the socket, in order.
    upstreams: Vec<String>,
    /// When each message arrived.
    arrivals: Vec<Instant>,
    /// Today's page views in each message.
    pageviews: Vec<u64>,
    last: Option<LiveMetrics>,
    errors: Vec<String>,
}

/// What the dashboard does: a ticket through the balancer (`POST /api/ws-ticket`), the socket
/// through the balancer (another processor, likely), reading ticks; on close, the same again.
fn dashboard(base: String, stop: Arc<AtomicBool>, state: Arc<Mutex<Session>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            while !stop.load(Ordering::Relaxed) {
                let fetched = tokio::task::spawn_blocking({
                    let base = base.clone();
                    move || ticket(&base)
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r);
                let t = match fetched {
                    Ok(t) => t,
                    Err(_) if stop.load(Ordering::Relaxed) => break,
                    Err(e) => {
                        state
                            .lock()
                            .expect("lock")
                            .errors
                            .push(format!("ticket: {e}"));
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                let (mut client, snapshot, headers) =
                    match LiveClient::open(&base, SITE, Auth::Ticket(&t)).await {
                        Ok(open) => open,
                        Err(e) => {
                            state.lock().expect("lock").errors.push(e.to_string());
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                    };
                {
                    let mut s = state.lock().expect("lock");
                    s.sockets += 1;
                    s.upstreams.push(
                        headers
                            .get("x-test-upstream")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string(),
                    );
                    s.arrivals.push(Instant::now());
                    s.pageviews.push(snapshot.metrics.today.pageviews);
                    s.last = Some(snapshot.metrics);
                }
                while !stop.load(Ordering::Relaxed) {
                    match client.poll(Duration::from_secs(1)).await {
                        Polled::Message(m) => {
                            if let ServerMessage::Tick(u) | ServerMessage::Snapshot(u) = *m {
                                let mut s = state.lock().expect("lock");
                                s.arrivals.push(Instant::now());
                                s.pageviews.push(u.metrics.today.pageviews);
                                s.last = Some(u.metrics);
                            }
                        }
                        Polled::Quiet => {}
                        Polled::Closed => break,
                    }
                }
            }
        });
    })
}

// ---------------------------------------------------------------------------------------------
// The test

/// Sends every lane of `lanes` to `url` in parallel (one thread per lane), counting requests
/// sent in `sent`.
fn replay(
    url: &str,
    lanes: &Arc<Vec<Vec<Request>>>,
    sent: &Arc<AtomicUsize>,
) -> Vec<JoinHandle<()>> {
    (0..lanes.len())
        .map(|l| {
            let (url, lanes, sent) = (url.to_string(), lanes.clone(), sent.clone());
            std::thread::spawn(move || {
                for request in &lanes[l] {
                    send(&url, request);
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect()
}

fn join_all(threads: Vec<JoinHandle<()>>) {
    for t in threads {
        t.join().expect("sender thread");
    }
}

/// Every history answer the dashboard asks for, as JSON, from `base` (a second and third
/// time through the balancer, so each surviving processor answers at least once).
fn history(base: &str, now: i64) -> Vec<(String, serde_json::Value)> {
    let (from, to) = (now - 2 * 3_600_000, now + 3_600_000);
    let range = format!("site={SITE}&from={from}&to={to}");
    let mut paths = vec![
        format!("/api/stats/summary?{range}"),
        format!("/api/stats/timeseries?{range}&interval=minute"),
        format!("/api/stats/timeseries?{range}&interval=hour&tz=%2B05:30"),
        format!("/api/stats/timeseries?{range}&interval=day&tz=-05:00"),
    ];
    for d in protocol::stats::Dimension::ALL {
        paths.push(format!(
            "/api/stats/breakdown?{range}&dimension={}&limit=100",
            d.name()
        ));
    }
    paths
        .into_iter()
        .map(|path| {
            let (status, body) = get(&format!("{base}{path}"), Some(TOKEN));
            assert_eq!(status, 200, "{base}{path}: {body}");
            (path, body)
        })
        .collect()
}

/// The live metrics a fresh socket at `base` (Bearer token) sees first.
fn live_snapshot(base: &str) -> LiveMetrics {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async { LiveClient::connect(base, SITE).await.1.metrics })
}

/// How long `events` may take to pass the balancer, or to be stored: the CI stream takes about
/// a minute; a benchmark's longer stream gets time in proportion (SecantusDB, a Python server,
/// stores a few hundred events a second here).
fn store_deadline_for(events: usize) -> Duration {
    Duration::from_secs(400.max(events as u64 / 100))
}

#[test]
fn three_processors_behind_nginx_equal_standalone_through_a_kill() {
    let _serial = serial();
    let events: usize = std::env::var("FOOTFALL_SCALEOUT_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    // The benchmark (bench/scaleout.sh) also runs it with one processor, and without the kill.
    let count: usize = std::env::var("FOOTFALL_SCALEOUT_PROCESSORS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let kill = count > 1 && std::env::var("FOOTFALL_SCALEOUT_KILL").as_deref() != Ok("0");
    let now = now_ms();
    let lanes = Arc::new(stream("so", events, (events / 25).max(1), 8, now));
    let requests: usize = lanes.iter().map(Vec::len).sum();
    let dir = tempfile::tempdir().expect("tempdir");

    // The reference: one standalone process fed the same requests.
    let standalone = Footfall::start(&dir.path().join("standalone"), &["--rate-limit", "0"]);
    standalone.add_site(SITE);
    let started = Instant::now();
    join_all(replay(
        &standalone.url("/api/batch"),
        &lanes,
        &Arc::new(AtomicUsize::new(0)),
    ));
    // Until everything is queryable, as for the deployment below.
    standalone.wait_caught_up();
    let standalone_secs = started.elapsed().as_secs_f64();

    // The deployment: broker, MongoDB, three processors, two collectors, nginx.
    let broker = Tansu::start();
    let mongo = MongoServer::start();
    let processors: Vec<Service> = (0..count)
        .map(|i| {
            Service::processor(
                &broker.brokers(),
                &dir.path().join(format!("processor-{i}")),
                &["--mongo-uri", &mongo.uri(), "--batch-max", "500"],
            )
        })
        .collect();
    let mut processors: Vec<Option<Service>> = processors.into_iter().map(Some).collect();
    let collectors: Vec<Service> = (0..2)
        .map(|_| Service::collector(&broker.brokers(), dir.path(), &[]))
        .collect();
    let first = processors[0].as_ref().expect("processor 0");
    register_site(first, &collectors.iter().collect::<Vec<_>>(), SITE);
    let ports = |s: &[&Service]| s.iter().map(|s| s.port).collect::<Vec<_>>();
    let processor_ports = ports(&processors.iter().flatten().collect::<Vec<_>>());
    let nginx = Nginx::start(
        &ports(&collectors.iter().collect::<Vec<_>>()),
        &processor_ports,
    );
    let lb = nginx.base();

    // A ticket from one processor opens a socket at another, once.
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let [a, b, c] =
            [0, 1, 2].map(|i| processors[i % count].as_ref().expect("processor").url(""));
        let t = ticket(&a).expect("ticket from processor 0");
        runtime.block_on(async {
            LiveClient::open(&b, SITE, Auth::Ticket(&t))
                .await
                .expect("processor 0's ticket opens a socket at processor 1");
            let again = LiveClient::open(&c, SITE, Auth::Ticket(&t)).await;
            assert!(again.is_err(), "a used ticket opened a second socket");
        });
    }

    // Every processor must own partitions before the load.
    std::thread::sleep(Duration::from_secs(4));

    let stop = Arc::new(AtomicBool::new(false));
    let session = Arc::new(Mutex::new(Session::default()));
    let watcher = dashboard(lb.clone(), stop.clone(), session.clone());
    assert!(
        eventually(Duration::from_secs(20), || session
            .lock()
            .expect("lock")
            .sockets
            > 0),
        "the dashboard never opened its socket through the balancer: {:?}",
        session.lock().expect("lock").errors
    );

    // The stream through the balancer; processor 1 dies (SIGKILL) half-way.
    let sent = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let senders = replay(&format!("{lb}/api/batch"), &lanes, &sent);
    assert!(
        eventually(store_deadline_for(events), || sent.load(Ordering::Relaxed)
            >= requests / 2),
        "half the stream was never accepted"
    );
    if kill {
        processors[1].take().expect("processor 1").kill9();
    }
    let killed_at = started.elapsed();
    join_all(senders);
    let ingest_secs = started.elapsed().as_secs_f64();

    // Everything stored: the count through the balancer reaches standalone's.
    let want = standalone.summary(SITE)["events"].as_u64().unwrap_or(0);
    assert_eq!(want, events as u64, "standalone stored the whole stream");
    let stored = |lb: &str| {
        let (status, body) = get(
            &format!(
                "{lb}/api/stats/summary?site={SITE}&from={}&to={}",
                now - 7_200_000,
                now + 3_600_000
            ),
            Some(TOKEN),
        );
        if status == 200 {
            body["events"].as_u64().unwrap_or(0)
        } else {
            0
        }
    };
    let complete = eventually(store_deadline_for(events), || stored(&lb) >= want);
    let pipeline_secs = started.elapsed().as_secs_f64();
    let logs = || {
        processors
            .iter()
            .flatten()
            .map(|p| p.log_text())
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    assert!(
        complete,
        "stored {} of {want} through the balancer:\n{}",
        stored(&lb),
        logs()
    );

    // Every history answer equals standalone's, from every surviving processor.
    let reference = history(&standalone.base, now);
    for round in 0..3 {
        for ((path, got), (_, want)) in history(&lb, now).iter().zip(&reference) {
            assert_eq!(got, want, "round {round}: {path} through the balancer");
        }
    }
    assert_eq!(stored(&lb), want, "nothing counted twice");

    // Live metrics equal standalone's, kill or not: a batch the killed processor stored but
    // had not published is published by the processor it is redelivered to, once.
    let settle = |session: &Mutex<Session>| {
        eventually(Duration::from_secs(30), || {
            let before = session.lock().expect("lock").arrivals.len();
            std::thread::sleep(Duration::from_secs(2));
            session.lock().expect("lock").arrivals.len() == before
        })
    };
    let offsets: Vec<String> = session
        .lock()
        .expect("lock")
        .arrivals
        .iter()
        .map(|t| {
            let (after, before) = (
                t.saturating_duration_since(started),
                started.saturating_duration_since(*t),
            );
            format!("{:.1}", after.as_secs_f64() - before.as_secs_f64())
        })
        .collect();
    eprintln!(
        "live messages at (s from the stream's start): {offsets:?}, page views {:?}; complete at {pipeline_secs:.1}",
        session.lock().expect("lock").pageviews
    );
    assert!(settle(&session), "live ticks never settled");
    let live_pageviews = |session: &Mutex<Session>| {
        session
            .lock()
            .expect("lock")
            .last
            .as_ref()
            .map_or(0, |m| m.today.pageviews)
    };
    // Today's figures the events make (the visit figures come from the store's visits on
    // their own schedule; history above already compared them).
    let counted = |m: &LiveMetrics| {
        let t = &m.today;
        (t.pageviews, t.events, t.visitors, t.breakdowns.clone())
    };
    standalone.wait_caught_up();
    let want_today = counted(&live_snapshot(&standalone.base));
    let exact = eventually(Duration::from_secs(60), || {
        session.lock().expect("lock").last.as_ref().map(counted) == Some(want_today.clone())
    });
    let (got, want_live) = (live_pageviews(&session), want_today.0);
    assert!(
        exact,
        "live today {:?} vs standalone {want_today:?}",
        session.lock().expect("lock").last.as_ref().map(counted)
    );
    assert_eq!(
        counted(&live_snapshot(&lb)),
        want_today,
        "a fresh socket through the balancer"
    );
    let after = Arc::new(stream("after", 1_000, 40, 4, now_ms()));
    join_all(replay(
        &standalone.url("/api/batch"),
        &after,
        &Arc::new(AtomicUsize::new(0)),
    ));
    standalone.wait_caught_up();
    let added = live_snapshot(&standalone.base).today.pageviews - want_live;
    join_all(replay(
        &format!("{lb}/api/batch"),
        &after,
        &Arc::new(AtomicUsize::new(0)),
    ));
    // Everything of the second stream reaches the dashboard, and nothing twice.
    let end_live = live_snapshot(&standalone.base).today.pageviews;
    let caught_up = eventually(Duration::from_secs(120), || {
        live_pageviews(&session) >= got + added
    });
    assert!(
        caught_up,
        "after the failure the dashboard moved by {} page views, standalone by {added}",
        live_pageviews(&session) as i64 - got as i64
    );
    assert!(settle(&session), "live ticks never settled");
    let end = live_pageviews(&session);
    assert_eq!(
        end, end_live,
        "live page views {end}, standalone's {end_live}"
    );
    // The session's numbers are current: a fresh socket through the balancer (any
    // processor) shows the same.
    assert_eq!(
        live_snapshot(&lb).today.pageviews,
        end,
        "the session went stale"
    );
    stop.store(true, Ordering::Relaxed);
    watcher.join().expect("dashboard thread");
    let s = session.lock().expect("lock");
    eprintln!(
        "scaleout: {count} processor(s), kill {kill}: {events} events in {requests} requests; standalone ingest {standalone_secs:.1}s; \
         through nginx: ingest {ingest_secs:.1}s (processor killed at {:.1}s), stored and \
         queryable after {pipeline_secs:.1}s ({:.0} events/s); live page views {got} of \
         {want_live} after the kill, {end} of {end_live} at the end ({} write(s) the killed \
         processor stored but had not published, published again); dashboard: {} socket(s) \
         via {:?}, {} ticket/socket retries",
        killed_at.as_secs_f64(),
        events as f64 / pipeline_secs,
        logs().matches("published again").count(),
        s.sockets,
        s.upstreams,
        s.errors.len()
    );

    // The session stayed live: it reconnected through the balancer (a ticket from whichever
    // processor, the socket at whichever) when its processor died, and it got the messages
    // above. Ticks come only when numbers change, so gaps while the killed processor's
    // partitions move are expected and printed, not asserted.
    assert!(
        s.sockets <= 4,
        "the dashboard reconnected {} times: {:?}",
        s.sockets,
        s.errors
    );
    drop(nginx);
}
