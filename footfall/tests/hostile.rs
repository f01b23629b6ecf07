//! The outside security review (issue 12), replayed against the real binary: every finding
//! that held is reproduced here as the attack it was, measured the way it hurt (latency of
//! other clients, memory of the process, bytes on disk), and kept fixed.
//!
//! A few assertions are on time. They are the acceptance criteria of the findings (an attack
//! that makes the server slow for everyone else *is* the finding), so they cannot be
//! benchmarks; they take the median of several probes and leave wide margins, so a loaded
//! 2-core CI machine does not make them flake.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// Finding 1: `from`/`to` took any i64 and the query walked every day of the range, so one
/// request could freeze a worker for hours, two of them starved `/api/health`, and the
/// process then ignored SIGTERM. Now extreme ranges are refused at once, a valid range costs
/// what is stored (not its span), and nobody else notices.
#[test]
fn finding_1_extreme_time_ranges_are_refused_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ff = Footfall::start(dir.path(), &[]);
    let attacks: Vec<String> = [
        "/api/stats/summary?from=0&to=86400000000000000",
        "/api/stats/summary?from=-9000000000000000000&to=9000000000000000000",
        "/api/stats/breakdown?dimension=page&from=0&to=86400000000000000",
        "/api/stats/breakdown?dimension=page&from=-9000000000000000000&to=9000000000000000000",
        // A 1 ms range next to i64::MAX: rounding to buckets overflowed.
        "/api/stats/summary?from=9223372036854775806&to=9223372036854775807",
        "/api/stats/timeseries?interval=day&from=-9223372036854775808&to=9223372036854775807",
    ]
    .iter()
    .map(|q| ff.url(q))
    .collect();

    // Two attackers keep extreme queries in flight the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    let attackers: Vec<_> = (0..2)
        .map(|_| {
            let (attacks, stop) = (attacks.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut answers = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    for url in &attacks {
                        answers.push((url.clone(), timed_get(url, Some(TOKEN), 5)));
                    }
                }
                answers
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let health: Vec<Duration> = (0..15)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(20));
            timed_get(&ff.url("/api/health"), None, 5).1
        })
        .collect();
    stop.store(true, Ordering::Relaxed);
    let answers: Vec<(String, (Option<u16>, Duration))> = attackers
        .into_iter()
        .flat_map(|a| a.join().expect("attacker"))
        .collect();

    for (url, (status, took)) in &answers {
        assert!(
            matches!(status, Some(400..=499)),
            "{url} answered {status:?} after {took:?}"
        );
    }
    let took: Vec<Duration> = answers.iter().map(|(_, (_, t))| *t).collect();
    // Acceptance criteria of the finding: refusals within 100 ms, health within 50 ms.
    assert!(median(&took) < Duration::from_millis(100), "{took:?}");
    assert!(median(&health) < Duration::from_millis(50), "{health:?}");

    // The longest range allowed is answered (from what is stored), and so is a range that
    // reaches far into the future.
    let day = 86_400_000i64;
    let now = now_ms();
    for q in [
        format!("/api/stats/summary?from={}&to={now}", now - 2000 * day),
        format!(
            "/api/stats/breakdown?dimension=page&from={}&to={now}",
            now - 2000 * day
        ),
        format!(
            "/api/stats/timeseries?interval=day&from={now}&to={}",
            now + 1999 * day
        ),
    ] {
        let (status, took) = timed_get(&ff.url(&q), Some(TOKEN), 5);
        assert_eq!(status, Some(200), "{q}");
        assert!(took < Duration::from_secs(2), "{q} took {took:?}");
    }
    let (status, body) = get(
        &ff.url(&format!(
            "/api/stats/summary?from={}&to={now}",
            now - 2001 * day
        )),
        Some(TOKEN),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "from", "{body}");

    // And SIGTERM is honoured right after.
    let started = Instant::now();
    assert!(ff.stop().success());
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Finding 4: ~12,000 made-up `site` values from ~60 IPs in 10 s pushed a real site out of
/// the live view (its snapshot fell from 20,000 page views to 0), and every one of them cost
/// a live-metrics entry and stored rows. Now only registered sites are accepted: the junk is
/// refused with a 403 and leaves no trace, and the real site's live numbers stay.
#[test]
fn finding_4_junk_sites_are_refused_and_leave_real_sites_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The attacker's 60 addresses arrive through a trusted proxy (a CDN).
    let ff = Footfall::start(dir.path(), &["--trusted-proxies", "127.0.0.1"]);
    ff.add_site("real.test");
    let batch = ff.url("/api/batch");
    // 20,000 page views of the real site (200 batches of 100 from 100 visitors' IPs).
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let batch = batch.clone();
            std::thread::spawn(move || {
                for b in 0..50 {
                    let events: Vec<String> = (0..100)
                        .map(|i| format!(r#"{{"event":"page_view","eventId":"real-{t}-{b:03}-{i:03}","page":"/p{i}"}}"#))
                        .collect();
                    let body = format!(r#"{{"site":"real.test","events":[{}]}}"#, events.join(","));
                    let (status, reply) = post_from(&batch, &format!("203.0.113.{}", b % 100), &body);
                    assert_eq!((status, reply["accepted"].as_u64()), (202, Some(100)), "{reply}");
                }
            })
        })
        .collect();
    for s in senders {
        s.join().expect("sender");
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let live_pageviews = || {
        runtime.block_on(async {
            let (mut live, snapshot) =
                common::live::LiveClient::connect(&ff.base, "real.test").await;
            if snapshot.metrics.today.pageviews == 20_000 {
                return Some(20_000);
            }
            live.until(Duration::from_secs(5), |t| {
                t.metrics.today.pageviews == 20_000
            })
            .await
            .map(|t| t.metrics.today.pageviews)
        })
    };
    // The store (and with it live metrics) takes events from the journal right behind the
    // 2xx, at a lower CPU priority: wait for it, as the flood below is measured against it.
    ff.wait_caught_up();
    assert_eq!(live_pageviews(), Some(20_000));

    // The flood: 12,000 made-up sites from 60 addresses, as fast as 8 connections go.
    let flood: Vec<_> = (0..8)
        .map(|t| {
            let batch = batch.clone();
            std::thread::spawn(move || {
                let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
                for i in (t..12_000).step_by(8) {
                    let body = format!(
                        r#"{{"site":"junk-{i}.example","events":[{{"event":"page_view","page":"/"}}]}}"#
                    );
                    let (status, reply) = post_from(&batch, &format!("198.51.100.{}", i % 60), &body);
                    if status == 403 {
                        assert_eq!(reply["error"]["code"], "unknown_site", "{reply}");
                    }
                    *statuses.entry(status).or_default() += 1;
                }
                statuses
            })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for f in flood {
        for (status, n) in f.join().expect("flood") {
            *statuses.entry(status).or_default() += n;
        }
    }
    assert_eq!(statuses, [(403, 12_000)].into(), "every junk site refused");

    // The real site's live numbers are intact, and the junk left nothing behind.
    assert_eq!(live_pageviews(), Some(20_000));
    let (_, sites) = get(&ff.url("/api/stats/sites"), Some(TOKEN));
    let with_data: Vec<&str> = sites["sites"]
        .as_array()
        .expect("sites")
        .iter()
        .filter_map(|s| s["site"].as_str())
        .collect();
    assert_eq!(with_data, ["real.test"], "{sites}");
    let (_, registry) = get(&ff.url("/api/sites"), Some(TOKEN));
    assert_eq!(
        registry["sites"].as_array().map(Vec::len),
        Some(3),
        "{registry}"
    );
}

/// How a site is registered, each way: `footfall sites add` on the data folder (before the
/// server starts, or while it runs), the API, and what an unknown site gets.
#[test]
fn finding_4_sites_are_registered_by_cli_and_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sites = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_footfall"))
            .arg("sites")
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .expect("run footfall sites");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    assert!(sites(&["add", "Before.Example"]).0);
    let ff = Footfall::start(dir.path(), &[]);
    let event = |site: &str| {
        post(
            &ff.url("/api/batch"),
            "text/plain",
            &format!(r#"{{"site":"{site}","events":[{{"event":"page_view"}}]}}"#),
        )
    };
    for known in ["before.example", "default", "demo"] {
        assert_eq!(event(known).0, 202, "{known}");
    }
    let (status, body) = event("later.example");
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["field"], "site");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("footfall sites add later.example")),
        "{body}"
    );
    // Added from another shell while the server runs: accepted within the refresh.
    let (ok, out) = sites(&["add", "later.example"]);
    assert!(ok && out.contains("added later.example"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while event("later.example").0 != 202 {
        assert!(
            Instant::now() < deadline,
            "the running server picks the site up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The API, and the CLI through the API.
    ff.add_site("api.example");
    assert_eq!(event("api.example").0, 202);
    let cli_api = std::process::Command::new(env!("CARGO_BIN_EXE_footfall"))
        .args(["sites", "remove", "api.example", "--server", &ff.base])
        .env("FOOTFALL_ADMIN_TOKEN", TOKEN)
        .output()
        .expect("run");
    assert!(cli_api.status.success(), "{cli_api:?}");
    assert_eq!(event("api.example").0, 403);
    let (status, _) = get(&ff.url("/api/sites"), Some("wrong-token-wrong-token"));
    assert_eq!(status, 401);
    let (ok, list) = sites(&["list"]);
    assert!(ok, "{list}");
    let names: Vec<&str> = list.lines().filter_map(|l| l.split('\t').next()).collect();
    assert_eq!(
        names,
        ["before.example", "default", "demo", "later.example"]
    );
    assert!(!sites(&["add", "not a site"]).0);
}

/// Finding 2: limits counted characters, but a path is stored percent-encoded, so 2,047
/// characters of U+10000 became 24,487 bytes — kept in the live view (minutes × dimensions ×
/// keys), the event row, its JSON copy and every rollup row. 200 gzip'd batches of 100 such
/// events took the process from 10 MB to 545 MB of memory and the database grew ~73 KB per
/// event. Now every stored string is limited in bytes after normalisation and the live view in
/// bytes per site: the same flood stays under 150 MB and under 2 KB per event on disk.
#[test]
fn finding_2_four_byte_paths_do_not_blow_up_memory_or_disk() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    // The attacker has as many addresses as it likes: no rate limit in the way.
    let ff = Footfall::start(dir.path(), &["--rate-limit", "0"]);
    let pid = ff.child.id();
    // Bytes of the files in a folder: the store's in the data folder, the journal's in its own.
    let files_in = |d: &std::path::Path| -> u64 {
        std::fs::read_dir(d)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.metadata().ok())
                    .filter(std::fs::Metadata::is_file)
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or_default()
    };
    let on_disk = || files_in(dir.path());
    let (rss_before, disk_before) = (rss_kib(pid), on_disk());
    let batches: Vec<Vec<u8>> = (0..200)
        .map(|b| {
            let events: Vec<String> = (0..100)
                .map(|i| {
                    let prefix = format!("/{b:03}{i:02}/");
                    let path = prefix.clone() + &"\u{10000}".repeat(2047 - prefix.chars().count());
                    format!(r#"{{"event":"page_view","page":"{path}"}}"#)
                })
                .collect();
            let json = format!(r#"{{"site":"default","events":[{}]}}"#, events.join(","));
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(json.as_bytes()).expect("gzip");
            gz.finish().expect("gzip")
        })
        .collect();
    let sent_kib = batches.iter().map(Vec::len).sum::<usize>() / batches.len();
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let batches = Arc::new(batches);
    let url = ff.url("/api/batch");
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let (batches, url) = (batches.clone(), url.clone());
            std::thread::spawn(move || {
                for body in batches.iter().skip(t).step_by(4) {
                    let resp = ureq::post(&url)
                        .set("Content-Type", "text/plain")
                        .set("Content-Encoding", "gzip")
                        .set("User-Agent", CHROME)
                        .send_bytes(body);
                    let status = match resp {
                        Ok(r) | Err(ureq::Error::Status(_, r)) => r.status(),
                        Err(e) => panic!("{e}"),
                    };
                    assert_eq!(status, 202);
                }
            })
        })
        .collect();
    for s in senders {
        s.join().expect("sender");
    }
    // Memory and disk once the store has taken it all from the journal.
    ff.wait_caught_up();
    std::thread::sleep(Duration::from_millis(500));
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    let (peak_kib, disk_after) = (peak.load(Ordering::Relaxed), on_disk());
    for e in std::fs::read_dir(dir.path()).expect("dir").flatten() {
        eprintln!(
            "  {:?} {} KiB",
            e.file_name(),
            e.metadata().map_or(0, |m| m.len()) / 1024
        );
    }
    let per_event = (disk_after.saturating_sub(disk_before)) / 20_000;
    eprintln!(
        "flood: {sent_kib} B per gzip'd batch; RSS {rss_before} KiB before, peak {peak_kib} KiB; \
         disk +{} KiB = {per_event} B per event",
        (disk_after - disk_before) / 1024
    );
    assert_eq!(ff.summary("default")["events"].as_u64(), Some(20_000));
    // Acceptance criteria of the finding.
    assert!(peak_kib < 150 * 1024, "peak RSS {peak_kib} KiB");
    assert!(per_event < 2048, "{per_event} bytes per event in the store");
    // The journal held every event on the way in; once the store has them it keeps a
    // bounded remainder (a segment is closed once taken), not a copy of the flood.
    let journal = files_in(&dir.path().join("journal"));
    assert!(
        journal < 4 * 1024 * 1024,
        "{journal} bytes left in the journal"
    );
}

/// Finding 5: the server capped connections in all (10,000) but not per client, so one
/// client's 10,500 idle connections took every slot and `/api/health` waited 8 s for a
/// header timeout to free one. Now one address holds at most `--max-connections-per-ip`
/// (256) and its further connections are closed at once: another client is served at once.
#[test]
fn finding_5_one_address_cannot_take_every_connection() {
    // 10,500 sockets here and as many in the server: raise the soft limit as the server does.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let dir = tempfile::tempdir().expect("tempdir");
    let ff = Footfall::start(dir.path(), &[]);
    let (open, probes) = connection_flood(&ff, 10_500);
    eprintln!(
        "flood of 10,500 from 127.0.0.1: {open} kept open; health from 127.0.0.2: {probes:?}"
    );
    // Acceptance criterion of the finding (the median, robust to one probe a busy machine
    // delays); and no probe waits for the flood's connections to time out (8.8 s before).
    assert!(median(&probes) < Duration::from_millis(100), "{probes:?}");
    assert!(
        probes.iter().all(|p| *p < Duration::from_secs(1)),
        "{probes:?}"
    );
    assert!(open <= 256, "{open} connections of one address kept open");
    assert!(ff.stop().success());
}

/// Opens `n` idle connections from 127.0.0.1 and keeps them while another client
/// (127.0.0.2, a loopback alias) asks for `/api/health` a few times: how many of the flood's
/// connections the server kept open, and how long each health answer took.
fn connection_flood(ff: &Footfall, n: usize) -> (usize, Vec<Duration>) {
    use std::io::Read;
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], ff.port()).into();
    // Opened from many threads at once, as an attacker would: all of them must be open
    // within the server's 10 s header timeout, which closes idle connections.
    let started = Instant::now();
    let threads: Vec<_> = (0..16)
        .map(|t| {
            std::thread::spawn(move || {
                (t..n)
                    .step_by(16)
                    .filter_map(|_| {
                        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let flood: Vec<std::net::TcpStream> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("flood thread"))
        .collect();
    eprintln!(
        "{} connections opened in {:?}",
        flood.len(),
        started.elapsed()
    );
    assert!(flood.len() > n * 9 / 10, "only {} connected", flood.len());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let probes: Vec<Duration> = (0..7)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            runtime.block_on(health_from([127, 0, 0, 2], addr))
        })
        .collect();
    // What the server kept: a closed connection reads end-of-file (or a reset), an open one
    // has nothing to read yet. The server closes over-cap connections right after accepting.
    let still_open = || {
        flood
            .iter()
            .filter(|s| {
                s.set_nonblocking(true).expect("nonblocking");
                matches!((&**s).read(&mut [0u8; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut open = still_open();
    while open > 256 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        open = still_open();
    }
    (open, probes)
}

/// `GET /api/health` from a chosen loopback address; how long until the status line came
/// (15 s when it never did).
async fn health_from(ip: [u8; 4], addr: std::net::SocketAddr) -> Duration {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = Instant::now();
    let answered = tokio::time::timeout(Duration::from_secs(15), async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind((std::net::Ipv4Addr::from(ip), 0).into())
            .expect("bind a loopback alias");
        let mut stream = socket.connect(addr).await.expect("connect");
        stream
            .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.expect("status line");
        assert_eq!(&head, b"HTTP/1.1 200");
    })
    .await;
    match answered {
        Ok(()) => started.elapsed(),
        Err(_) => Duration::from_secs(15),
    }
}

/// Finding 6: 5,000 wrong tokens in 0.7 s and 2,000 ticket guesses in 0.3 s were each a plain
/// 401 — nothing slowed, counted or logged. Now a client address whose credentials keep
/// failing gets 429 (without its guesses being compared) on every authenticated path, each
/// failure is counted in `/metrics`, one rate-limited line says so, and the rest of the
/// world is not affected.
#[test]
fn finding_6_wrong_tokens_are_throttled_counted_and_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Clients come through a trusted proxy, so each has its own address.
    let ff = Footfall::start(dir.path(), &["--trusted-proxies", "127.0.0.1"]);
    let attacker = "198.51.100.7";
    let agent = ureq::AgentBuilder::new().build();
    let attempt = |method: &str, path: &str, token: &str, ip: &str| -> (u16, Option<String>) {
        let mut req = agent
            .request(method, &ff.url(path))
            .set("X-Forwarded-For", ip);
        if !token.is_empty() {
            req = req.set("Authorization", &format!("Bearer {token}"));
        }
        match req.call() {
            Ok(r) | Err(ureq::Error::Status(_, r)) => {
                (r.status(), r.header("Retry-After").map(str::to_owned))
            }
            Err(e) => panic!("{e}"),
        }
    };
    // Guesses on every authenticated path in turn: the stats API, the site registry, tickets
    // and the live feed.
    let paths = [
        ("GET", "/api/stats/summary"),
        ("GET", "/api/sites"),
        ("POST", "/api/ws-ticket"),
        ("GET", "/ws?site=default&ticket=guess"),
    ];
    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut retry_after = None;
    for i in 0..2_000 {
        let (method, path) = paths[i % paths.len()];
        let (status, retry) = attempt(method, path, &format!("guess-{i:016}"), attacker);
        *statuses.entry(status).or_default() += 1;
        if status == 429 {
            retry_after = retry;
        }
    }
    eprintln!(
        "2,000 guesses in {:?}: {statuses:?}, Retry-After {retry_after:?}",
        started.elapsed()
    );
    // 20 failures are allowed in a burst; every later guess is refused unchecked.
    assert_eq!(statuses.get(&401), Some(&20), "{statuses:?}");
    assert_eq!(statuses.get(&429), Some(&1_980), "{statuses:?}");
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().is_ok_and(|s| (1..=10).contains(&s))));
    // Even the right token is refused from that address for now; another address is served.
    assert_eq!(attempt("GET", "/api/stats/summary", TOKEN, attacker).0, 429);
    assert_eq!(
        attempt("GET", "/api/stats/summary", TOKEN, "203.0.113.9").0,
        200
    );
    assert_eq!(
        attempt("POST", "/api/ws-ticket", TOKEN, "203.0.113.9").0,
        200
    );
    // A few mistakes of another client are just 401s.
    for _ in 0..5 {
        assert_eq!(
            attempt("GET", "/api/sites", "mistyped-token-xyz", "203.0.113.10").0,
            401
        );
    }
    assert_eq!(attempt("GET", "/api/sites", TOKEN, "203.0.113.10").0, 200);

    let (_, metrics) = get(&ff.url("/metrics"), None);
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    let value = |name: &str| -> Option<u64> {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
    };
    assert_eq!(value("footfall_auth_failures_total"), Some(25), "{metrics}");
    assert_eq!(
        value("footfall_auth_throttled_total"),
        Some(1_981),
        "{metrics}"
    );

    let (status, _, stderr) = ff.stop_with_output();
    assert!(status.success());
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("wrong credentials"))
        .collect();
    assert_eq!(lines.len(), 1, "one line a minute at most: {stderr}");
    assert!(
        !stderr.contains(attacker),
        "no client address in the log: {stderr}"
    );
}

/// Finding 6: `FOOTFALL_ADMIN_TOKEN=a` was accepted. Tokens shorter than 16 characters are
/// refused at start-up, with a message that says why and how to make one.
#[test]
fn finding_6_short_tokens_are_refused_at_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (mode, extra) in [
        ("standalone", vec!["--listen", "127.0.0.1:0"]),
        (
            "processor",
            vec!["--listen", "127.0.0.1:0", "--brokers", "127.0.0.1:1"],
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_footfall"))
            .arg(mode)
            .args(&extra)
            .arg("--data-dir")
            .arg(dir.path())
            .env("FOOTFALL_ADMIN_TOKEN", "a")
            .output()
            .expect("run footfall");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{mode}: {stderr}");
        assert!(
            stderr.contains("FOOTFALL_ADMIN_TOKEN")
                && stderr.contains("1 characters long")
                && stderr.contains("at least 16"),
            "{mode}: {stderr}"
        );
    }
}

/// Finding 8: `/ws` checked no `Origin`, so a page anywhere that got hold of a ticket could
/// read the live feed. A foreign origin is refused before the upgrade — and the ticket is not
/// spent; the dashboard's own origin, a configured one, and clients without `Origin` (with a
/// token) are served.
#[test]
fn finding_8_the_live_feed_refuses_foreign_origins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ff = Footfall::start(
        dir.path(),
        &["--ws-allowed-origins", "https://admin.example.com"],
    );
    let own = format!("http://127.0.0.1:{}", ff.port());
    let ticket = || -> String {
        let resp = ureq::post(&ff.url("/api/ws-ticket"))
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .call()
            .expect("ticket");
        let body: serde_json::Value = resp.into_json().expect("json");
        body["ticket"].as_str().expect("ticket").to_owned()
    };
    let t = ticket();
    let query = format!("site=default&ticket={t}");
    assert_eq!(
        ws_handshake(&ff, &query, Some("https://evil.example"), None),
        403
    );
    assert_eq!(ws_handshake(&ff, &query, Some("null"), None), 403);
    // Same host name, another port: another origin.
    assert_eq!(
        ws_handshake(&ff, &query, Some("http://127.0.0.1:1"), None),
        403
    );
    // The refused attempts did not spend the ticket: the dashboard's own page uses it.
    assert_eq!(ws_handshake(&ff, &query, Some(&own), None), 101);
    let configured = format!("site=default&ticket={}", ticket());
    assert_eq!(
        ws_handshake(&ff, &configured, Some("https://admin.example.com"), None),
        101
    );
    // Not a browser: no Origin, a Bearer token.
    assert_eq!(ws_handshake(&ff, "site=default", None, Some(TOKEN)), 101);
    // A foreign page cannot use a token either.
    assert_eq!(
        ws_handshake(
            &ff,
            "site=default",
            Some("https://evil.example"),
            Some(TOKEN)
        ),
        403
    );
}

/// The status of a WebSocket handshake for `/ws?{query}` with an optional `Origin` and
/// Bearer token.
fn ws_handshake(ff: &Footfall, query: &str, origin: Option<&str>, token: Option<&str>) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", ff.port())).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut head = format!(
        "GET /ws?{query} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n",
        ff.port()
    );
    if let Some(origin) = origin {
        head += &format!("Origin: {origin}\r\n");
    }
    if let Some(token) = token {
        head += &format!("Authorization: Bearer {token}\r\n");
    }
    head += "\r\n";
    stream.write_all(head.as_bytes()).expect("write");
    let mut status = [0u8; 12];
    stream.read_exact(&mut status).expect("status line");
    String::from_utf8_lossy(&status[9..12])
        .parse()
        .expect("status code")
}

/// Finding 10: every high-ratio gzip request logged a WARN line (a client could write the
/// log at will), and the generated admin token was printed to stdout, which in a container is
/// the log. Now such warnings are rate-limited, and the token goes to a 0600 file in the data
/// folder whose path (not the token) is printed when stdout is not a terminal. No client
/// address appears in any log line, even at debug level.
#[test]
fn finding_10_logs_hold_no_tokens_no_addresses_and_no_floods() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let start = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_footfall"))
            .args(["standalone", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--log", "debug", "--trusted-proxies", "127.0.0.1"])
            .env_remove("FOOTFALL_ADMIN_TOKEN")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn footfall")
    };
    let base = format!("http://127.0.0.1:{port}");
    let wait_live = || {
        let deadline = Instant::now() + Duration::from_secs(20);
        while ureq::get(&format!("{base}/livez")).call().is_err() {
            assert!(Instant::now() < deadline, "footfall did not start");
            std::thread::sleep(Duration::from_millis(25));
        }
    };
    let stop = |mut child: std::process::Child| {
        let _ = std::process::Command::new("kill")
            .arg(child.id().to_string())
            .status();
        let status = child.wait().expect("wait");
        let (out, err) = output_of(&mut child);
        (status, out, err)
    };
    let mut child = start();
    wait_live();
    let token_path = dir.path().join("admin-token");
    let token = std::fs::read_to_string(&token_path).expect("token file");
    let token = token.trim().to_owned();
    assert!(token.len() >= 32, "{token}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_path)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let client = "198.51.100.23";
    let (status, _) = get(&format!("{base}/api/stats/summary"), Some(&token));
    assert_eq!(status, 200);
    // 200 gzip bombs-in-miniature (a ratio far past the warning's) from one client.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(
        format!(
            r#"{{"site":"default","events":[{{"event":"page_view","page":"/{}"}}]}}"#,
            " ".repeat(200_000)
        )
        .as_bytes(),
    )
    .expect("gzip");
    let bomb = gz.finish().expect("gzip");
    for _ in 0..200 {
        let _ = ureq::post(&format!("{base}/api/batch"))
            .set("Content-Type", "text/plain")
            .set("Content-Encoding", "gzip")
            .set("X-Forwarded-For", client)
            .set("User-Agent", CHROME)
            .send_bytes(&bomb);
    }
    // Requests that go wrong in other ways, from the same client.
    let _ = get(
        &format!("{base}/api/stats/summary"),
        Some("wrong-token-wrong-token"),
    );
    let _ = post_from(&format!("{base}/api/batch"), client, "{not json");
    let (status, stdout, stderr) = stop(child);
    assert!(status.success(), "{stderr}");
    assert!(
        !stdout.contains(&token),
        "the token is not printed to a pipe: {stdout}"
    );
    assert!(
        stdout.contains(&format!("admin token in {}", token_path.display())),
        "{stdout}"
    );
    assert!(!stderr.contains(&token), "nor logged");
    let ratio_lines = stderr.matches("unusually high gzip ratio").count();
    assert_eq!(ratio_lines, 1, "{stderr}");
    for line in stderr.lines() {
        assert!(
            !line.contains(client),
            "client address in a log line: {line}"
        );
        assert!(
            !line.contains("peer"),
            "client address in a log line: {line}"
        );
    }
    eprintln!(
        "200 high-ratio gzip requests: {ratio_lines} warning line; stderr {} lines at debug",
        stderr.lines().count()
    );

    // A restart keeps the token.
    child = start();
    wait_live();
    assert_eq!(
        get(&format!("{base}/api/stats/summary"), Some(&token)).0,
        200
    );
    let _ = stop(child);
}

/// Finding 7: what a site sent was stored as sent — a click's `href` with its
/// `?token=SECRET&email=…`, a page title of any length, and `userId` (often an e-mail
/// address). Now a click target loses its query and fragment, a title is cut to 256 bytes,
/// and a user id is stored only as a hash keyed with the daily salt unless the operator
/// passes `--store-user-ids`. Checked on the bytes of the data folder, whatever the schema.
#[test]
fn finding_7_personal_data_is_not_stored_as_sent() {
    let stored = |extra: &[&str]| -> Vec<u8> {
        let dir = tempfile::tempdir().expect("tempdir");
        let ff = Footfall::start(dir.path(), extra);
        let title = format!("Inbox (3) {} END-OF-TITLE", "x".repeat(600));
        let body = format!(
            r#"{{"site":"default","events":[
                {{"event":"page_view","page":"/account","userId":"alice@example.com","title":"{title}"}},
                {{"event":"click","page":"/account","userId":"alice@example.com","target":{{"tag":"a","href":"https://bank.example/reset?token=SECRET123&email=bob@example.com#frag-SECRET","text":"Reset"}}}}]}}"#
        );
        let (status, reply) = post(&ff.url("/api/batch"), "text/plain", &body);
        assert_eq!(
            (status, reply["accepted"].as_u64()),
            (202, Some(2)),
            "{reply}"
        );
        assert!(ff.stop().success());
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(dir.path()).expect("dir").flatten() {
            bytes.extend(std::fs::read(entry.path()).unwrap_or_default());
        }
        bytes
    };
    let has =
        |bytes: &[u8], needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());

    let private = stored(&[]);
    assert!(
        !has(&private, "alice@example.com"),
        "user id stored as sent"
    );
    assert!(
        !has(&private, "SECRET"),
        "click target's query or fragment stored"
    );
    assert!(!has(&private, "bob@example.com"));
    assert!(
        has(&private, "https://bank.example/reset"),
        "the target itself is kept"
    );
    assert!(
        has(&private, "Inbox (3) xxxxxxxx"),
        "the title is kept, cut"
    );
    assert!(!has(&private, "END-OF-TITLE"), "title longer than its cap");

    // The operator's choice: keep user ids (the rest stays private).
    let opted_in = stored(&["--store-user-ids"]);
    assert!(has(&opted_in, "alice@example.com"));
    assert!(!has(&opted_in, "SECRET"));
}
