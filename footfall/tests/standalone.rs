//! `footfall standalone` as a user runs it: the real binary, real HTTP, the real SQLite file.

mod common;

use std::process::{Command, Stdio};

use common::*;

fn track_body(event_id: &str) -> String {
    format!(
        r#"{{"event":"page_view","eventId":"{event_id}","page":"/home","sessionId":"sess1","userAgent":"{CHROME}","timezone":"Europe/Berlin","timestamp":{}}}"#,
        now_ms()
    )
}

#[test]
fn same_event_id_ten_times_is_stored_once_and_survives_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ff = Footfall::start(dir.path(), &[]);
    for _ in 0..10 {
        let (status, body) = post(
            &ff.url("/api/track"),
            "application/json",
            &track_body("evt-same-0001"),
        );
        assert_eq!(status, 200);
        assert_eq!(body["success"], true);
    }
    let s = ff.summary("default");
    assert_eq!(
        (s["events"].as_u64(), s["pageviews"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(ff.stop().success(), "graceful stop exits 0");

    let ff = Footfall::start(dir.path(), &[]);
    let s = ff.summary("default");
    assert_eq!(
        s["events"].as_u64(),
        Some(1),
        "still there after restart: {s}"
    );
    assert_eq!(s["visitors"].as_u64(), Some(1));
}

#[test]
fn every_acknowledged_event_survives_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ff = Footfall::start(dir.path(), &["--rate-limit", "0"]);
    ff.add_site("load.test");
    let acknowledged = flood(&ff.url("/api/batch"), "load.test", "load", 15, 20);
    assert_eq!(acknowledged, 8 * 15 * 20, "no 503s expected at this load");
    ff.kill9();

    let ff = Footfall::start(dir.path(), &[]);
    let s = ff.summary("load.test");
    assert_eq!(s["events"].as_u64(), Some(acknowledged), "{s}");
}

/// Sends `batches` batches of `per_batch` page views for `site` from each of 8 threads at
/// once, event ids tagged with `tag`; how many were acknowledged.
fn flood(url: &str, site: &str, tag: &str, batches: usize, per_batch: usize) -> u64 {
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (url, site, tag) = (url.to_string(), site.to_string(), tag.to_string());
            std::thread::spawn(move || {
                let mut acknowledged = 0;
                for b in 0..batches {
                    let events: Vec<String> = (0..per_batch)
                        .map(|i| format!(r#"{{"event":"page_view","eventId":"evt-{tag}-{t}-{b:03}-{i:03}","page":"/p{i}"}}"#))
                        .collect();
                    let body = format!(r#"{{"site":"{site}","events":[{}]}}"#, events.join(","));
                    let (status, reply) = post(&url, "text/plain", &body);
                    if status == 202 {
                        acknowledged += reply["accepted"].as_u64().unwrap_or(0);
                    }
                }
                acknowledged
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().expect("thread")).sum()
}

#[test]
fn events_still_in_the_journal_at_kill_9_are_stored_once_by_the_next_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut acknowledged, mut waiting) = (0, 0);
    // The store takes events a moment after their 2xx; a kill right after a flood usually
    // finds some still waiting. Flood again until one does (each round's events are new).
    for round in 0..5 {
        let ff = Footfall::start(dir.path(), &["--rate-limit", "0"]);
        ff.add_site("kill.test");
        acknowledged += flood(
            &ff.url("/api/batch"),
            "kill.test",
            &round.to_string(),
            10,
            100,
        );
        ff.kill9();
        // What the journal held that the store had not committed when the process died.
        let (journal, reader) =
            journal::open(journal::JournalConfig::new(dir.path().join("journal")))
                .expect("journal");
        waiting = journal.durable_end() - reader.position();
        drop((journal, reader));
        if waiting > 0 {
            break;
        }
    }
    eprintln!("waiting at the kill: {waiting} bytes");
    assert!(waiting > 0, "no kill found events waiting for the store");
    let ff = Footfall::start(dir.path(), &[]);
    ff.wait_caught_up();
    assert_eq!(
        ff.summary("kill.test")["events"].as_u64(),
        Some(acknowledged),
        "{waiting} journal bytes were waiting at the kill"
    );
}

/// The store indexes in idle CPU time only while requests come in a burst and the journal
/// has room; from half full on it takes its (low) share, so a busy machine cannot starve it
/// into a full journal; and without a burst it takes that share too.
#[test]
fn a_half_full_journal_gives_the_store_its_share_and_every_event_is_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ff = Footfall::start(dir.path(), SHARE_TEST_FLAGS);
    let (acknowledged, deferred, took_its_share) = flood_until_the_store_defers_and_catches_up(&ff);
    if may_leave_sched_idle() {
        assert!(deferred, "the store never deferred to the burst");
        assert!(took_its_share, "the journal never got half full");
    } else {
        assert!(!deferred, "SCHED_IDLE could not be left again here");
    }
    assert_eq!(
        ff.summary("share.test")["events"].as_u64(),
        Some(acknowledged)
    );
}

/// Where the server may not leave `SCHED_IDLE` again (no `CAP_SYS_NICE`, as in a container
/// without `cap_add: [SYS_NICE]`), the store never enters it: its threads stay at niceness 10
/// through a burst, and every event is stored. (Run as root, this drops the capability.)
#[test]
fn without_cap_sys_nice_the_store_stays_at_niceness_10_through_a_burst() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(ff) = Footfall::start_without_cap_sys_nice(dir.path(), SHARE_TEST_FLAGS) else {
        eprintln!("skipped: setpriv is not installed");
        return;
    };
    let pid = ff.child.id();
    assert!(
        !has_cap_sys_nice(&format!("/proc/{pid}/status")),
        "setpriv left the server CAP_SYS_NICE"
    );
    let threads = move || -> Vec<(String, i64, i64)> {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks");
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
            .filter_map(|stat| {
                let (head, rest) = stat.rsplit_once(") ")?;
                let name = head.split_once(" (")?.1.to_string();
                let fields: Vec<&str> = rest.split(' ').collect();
                // Niceness is field 19 of the stat line, the policy 41.
                Some((name, fields[16].parse().ok()?, fields[38].parse().ok()?))
            })
            .collect()
    };
    let watching = {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    seen.extend(threads());
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                seen
            }
        });
        (stop, seen)
    };
    let (acknowledged, deferred, _) = flood_until_the_store_defers_and_catches_up(&ff);
    watching.0.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = watching.1.join().expect("watcher");
    assert!(!deferred, "the gauge says the store deferred");
    let idle: Vec<_> = seen
        .iter()
        .filter(|(_, _, policy)| *policy == SCHED_IDLE)
        .collect();
    assert!(idle.is_empty(), "threads in SCHED_IDLE: {idle:?}");
    // The writer takes its share before its first unit of work, and keeps it.
    let sqlite: Vec<i64> = seen
        .iter()
        .filter(|(name, ..)| name == "footfall-sqlite")
        .map(|(_, nice, _)| *nice)
        .skip_while(|nice| *nice != 10)
        .collect();
    assert!(
        !sqlite.is_empty(),
        "the SQLite writer never took niceness 10"
    );
    assert!(
        sqlite.iter().all(|nice| *nice == 10),
        "the SQLite writer left niceness 10: {:?}",
        sqlite
            .iter()
            .filter(|nice| **nice != 10)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        ff.summary("share.test")["events"].as_u64(),
        Some(acknowledged)
    );
}

/// The policy number of `SCHED_IDLE` (linux/sched.h).
const SCHED_IDLE: i64 = 5;

/// The journal of the share tests: the store defers to a burst while the backlog is under
/// half of it, then takes its share until the backlog is down to a quarter. 16 MiB is more
/// than a flood appends before the share is first decided (every 0.25 s): with 4 MiB a faster
/// machine had the journal half full at the first decision, and the store never deferred.
const SHARE_TEST_JOURNAL_MIB: u64 = 16;
const SHARE_TEST_FLAGS: &[&str] = &["--journal-max-mb", "16", "--rate-limit", "0"];

/// Floods `share.test` in rounds until the store has deferred to the burst and taken its
/// share at a half-full journal (at most eight rounds), then waits until it has caught up and
/// the burst is over. Returns (events acknowledged, whether the store deferred, whether it
/// took its share with the journal half full).
fn flood_until_the_store_defers_and_catches_up(ff: &Footfall) -> (u64, bool, bool) {
    const IDLE_ONLY: &str = "footfall_store_idle_only";
    const BACKLOG: &str = "footfall_journal_backlog_bytes";
    ff.add_site("share.test");
    let metrics = ff.url("/metrics");
    assert_eq!(metric(&metrics, IDLE_ONLY), 0.0, "no burst yet");
    let half_full = (SHARE_TEST_JOURNAL_MIB * 1024 * 1024 / 2) as f64;
    let (mut acknowledged, mut deferred, mut took_its_share) = (0, false, false);
    for round in 0..8 {
        let flooding = {
            let url = ff.url("/api/batch");
            std::thread::spawn(move || flood(&url, "share.test", &round.to_string(), 40, 100))
        };
        while !flooding.is_finished() {
            let idle = metric(&metrics, IDLE_ONLY) == 1.0;
            deferred |= idle;
            took_its_share |= !idle && metric(&metrics, BACKLOG) >= half_full;
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        acknowledged += flooding.join().expect("flood");
        eprintln!("round {round}: deferred {deferred}, took its share {took_its_share}");
        if deferred && took_its_share {
            break;
        }
    }
    eprintln!(
        "deferred: {deferred}; took its share: {took_its_share}; acknowledged: {acknowledged}"
    );
    assert!(acknowledged > 0);
    ff.wait_caught_up();
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(metric(&metrics, IDLE_ONLY), 0.0, "the burst is over");
    (acknowledged, deferred, took_its_share)
}

/// Whether this user has CAP_SYS_NICE (the server runs as the same user), which taking a
/// thread out of SCHED_IDLE again needs.
fn may_leave_sched_idle() -> bool {
    has_cap_sys_nice("/proc/self/status")
}

/// Whether the process whose `/proc/<pid>/status` is at `status` has CAP_SYS_NICE.
fn has_cap_sys_nice(status: &str) -> bool {
    const CAP_SYS_NICE: u32 = 23;
    std::fs::read_to_string(status)
        .ok()
        .and_then(|status| {
            let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_NICE) != 0)
}

#[test]
fn stats_api_needs_the_token_and_checks_parameters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ff = Footfall::start(dir.path(), &[]);
    let url = ff.url("/api/stats/summary?site=default");
    assert_eq!(get(&url, None).0, 401);
    assert_eq!(get(&url, Some("wrong")).0, 401);
    assert_eq!(get(&url, Some(TOKEN)).0, 200);
    let (status, body) = get(&ff.url("/api/stats/summary?from=yesterday"), Some(TOKEN));
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "from");
    let (status, _) = get(&ff.url("/api/stats/nope"), Some(TOKEN));
    assert_eq!(status, 404);

    post(
        &ff.url("/api/track"),
        "application/json",
        &track_body("evt-range-0001"),
    );
    let day = 86_400_000;
    let (status, s) = get(
        &ff.url(&format!(
            "/api/stats/summary?site=default&from={}&to={}",
            now_ms() - day,
            now_ms() + day
        )),
        Some(TOKEN),
    );
    assert_eq!(status, 200);
    assert_eq!(s["events"], 1);
    let (_, s) = get(
        &ff.url(
            "/api/stats/summary?site=default&from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z",
        ),
        Some(TOKEN),
    );
    assert_eq!(s["events"], 0);
    let (status, sites) = get(&ff.url("/api/stats/sites"), Some(TOKEN));
    assert_eq!(status, 200);
    assert_eq!(sites["sites"][0]["site"], "default");
}

#[test]
fn second_process_on_the_same_data_dir_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = Footfall::start(dir.path(), &[]);
    let mut second = Command::new(env!("CARGO_BIN_EXE_footfall"))
        .args([
            "standalone",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let status = second.wait().expect("wait");
    assert!(!status.success());
    let (_, err) = output_of(&mut second);
    assert!(err.contains("in use by another footfall process"), "{err}");
}

#[test]
fn full_store_answers_503_and_stores_everything_it_acknowledged_once_there_is_room() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ff = Footfall::start(dir.path(), &["--store-max-mb", "1", "--rate-limit", "0"]);
    ff.add_site("full.test");
    let mut acknowledged = 0;
    let mut refused = None;
    for b in 0..400 {
        let events: Vec<String> = (0..50)
            .map(|i| format!(r#"{{"event":"page_view","eventId":"evt-full-{b:04}-{i:03}","page":"/a/fairly/long/path/{i}","title":"{}"}}"#, "t".repeat(200)))
            .collect();
        let body = format!(r#"{{"site":"full.test","events":[{}]}}"#, events.join(","));
        let (status, reply) = post(&ff.url("/api/batch"), "text/plain", &body);
        if status == 202 {
            acknowledged += reply["accepted"].as_u64().unwrap_or(0);
        } else {
            refused = Some((status, reply));
            break;
        }
    }
    let (status, reply) = refused.expect("the 1 MiB store fills up");
    assert_eq!(status, 503);
    assert_eq!(reply["error"]["code"], "unavailable");
    assert_eq!(get(&ff.url("/readyz"), None).0, 503);
    assert_eq!(get(&ff.url("/livez"), None).0, 200);
    // What the journal took just before the store filled up waits there, not lost: with room
    // again (no cap), every acknowledged event is stored, once.
    let stored = ff.summary("full.test")["events"].as_u64().unwrap_or(0);
    assert!(
        stored > 0 && stored <= acknowledged,
        "{stored} of {acknowledged}"
    );
    assert!(ff.stop().success(), "graceful stop exits 0");
    let ff = Footfall::start(dir.path(), &["--store-max-mb", "0"]);
    assert_eq!(
        ff.summary("full.test")["events"].as_u64(),
        Some(acknowledged)
    );
    assert_eq!(get(&ff.url("/readyz"), None).0, 200);
}

#[test]
fn generated_token_file_is_named_in_the_banner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_footfall"))
        .args(["standalone", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("FOOTFALL_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while ureq::get(&format!("{base}/livez")).call().is_err() {
        assert!(std::time::Instant::now() < deadline, "not live");
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    let (out, _) = output_of(&mut child);
    // To a pipe (a log) the banner names the file that keeps the token, not the token.
    let path = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("admin token in "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("banner names the token file");
    let token = std::fs::read_to_string(path).expect("token file");
    assert_eq!(token.trim().len(), 64);
    assert!(
        !out.contains(token.trim()),
        "the token itself is not in the log"
    );
    assert!(out.contains(&format!("{base}/api/batch")));
    assert!(out.contains(&format!("{base}/demo/")));
}

#[test]
fn distributed_subcommands_explain_what_they_need() {
    let out = Command::new(env!("CARGO_BIN_EXE_footfall"))
        .args(["collector", "--brokers", "127.0.0.1:1"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Kafka"));
    let help = Command::new(env!("CARGO_BIN_EXE_footfall"))
        .arg("--help")
        .output()
        .expect("run");
    let help = String::from_utf8_lossy(&help.stdout);
    for sub in ["standalone", "collector", "processor"] {
        assert!(help.contains(sub), "{help}");
    }
    let help = Command::new(env!("CARGO_BIN_EXE_footfall"))
        .args(["standalone", "--help"])
        .output()
        .expect("run");
    let help = String::from_utf8_lossy(&help.stdout);
    for env in [
        "FOOTFALL_LISTEN",
        "FOOTFALL_DATA_DIR",
        "FOOTFALL_ADMIN_TOKEN",
        "FOOTFALL_RATE_LIMIT",
        "FOOTFALL_TRUSTED_PROXIES",
        "FOOTFALL_ALLOWED_ORIGINS",
    ] {
        assert!(help.contains(env), "{env} missing from\n{help}");
    }
}

/// `--assets-dir` overrides the embedded files: an empty folder stands for a build without
/// assets, which must say so at start-up and at every asset path; a folder that does not
/// exist is a start-up error naming it.
#[test]
fn a_build_without_assets_says_so_and_a_missing_assets_dir_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("no-assets");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let empty_arg = empty.to_str().expect("utf-8 path");
    let ff = Footfall::start(&dir.path().join("data"), &["--assets-dir", empty_arg]);
    for path in ["/footfall.js", "/demo/", "/dashboard/"] {
        let resp = match ureq::get(&ff.url(path)).call() {
            Err(ureq::Error::Status(404, resp)) => resp,
            other => panic!("{path}: expected 404, got {other:?}"),
        };
        let text = resp.into_string().unwrap_or_default();
        assert!(
            text.contains("is not in this footfall build"),
            "{path}: {text}"
        );
        assert!(text.contains("cargo xtask dist"), "{path}: {text}");
    }
    // Ingestion and the API work all the same.
    let (status, _) = post(
        &ff.url("/api/track"),
        "application/json",
        &track_body("evt-noassets-1"),
    );
    assert_eq!(status, 200);
    let (_, _, err) = ff.stop_with_output();
    assert!(
        err.contains("not available")
            && err.contains("/footfall.js")
            && err.contains("/dashboard/"),
        "start-up should say what is missing:\n{err}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_footfall"))
        .args(["standalone", "--listen", "127.0.0.1:0", "--assets-dir"])
        .arg(dir.path().join("does-not-exist"))
        .arg("--data-dir")
        .arg(dir.path().join("data2"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read --assets-dir") && err.contains("does-not-exist"),
        "{err}"
    );
}

/// Stats answers over 1 KB are compressed on the fly for clients that accept it; the API is
/// never cacheable.
#[test]
fn large_stats_answers_are_compressed_on_the_fly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ff = Footfall::start(dir.path(), &["--rate-limit", "0"]);
    ff.add_site("gz.test");
    let events: Vec<String> = (0..60)
        .map(|i| format!(r#"{{"event":"page_view","eventId":"evt-gz-{i:04}","page":"/a/rather/long/path/number/{i}"}}"#))
        .collect();
    let body = format!(r#"{{"site":"gz.test","events":[{}]}}"#, events.join(","));
    assert_eq!(post(&ff.url("/api/batch"), "text/plain", &body).0, 202);
    let url = ff.url("/api/stats/breakdown?site=gz.test&dimension=page&limit=100");
    let get = |encoding: &str| {
        ureq::get(&url)
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .set("Accept-Encoding", encoding)
            .call()
            .expect("stats")
    };
    let plain = get("identity");
    assert_eq!(plain.header("content-encoding"), None);
    let plain_len = plain.into_string().expect("body").len();
    assert!(plain_len > 1024, "the answer is large: {plain_len} B");
    let br = get("br, gzip");
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert_eq!(br.header("vary"), Some("Accept-Encoding"));
    assert_eq!(br.header("cache-control"), Some("no-store"));
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut br.into_reader(), &mut bytes).expect("read");
    assert!(
        bytes.len() < plain_len / 2,
        "{} B of {plain_len} B",
        bytes.len()
    );
}

/// The events of site `default` with `from <= ts < to`, as the export's JSON documents.
fn exported_events(ff: &Footfall, from: i64, to: i64) -> Vec<serde_json::Value> {
    let (status, exported) = get(
        &ff.url(&format!(
            "/api/export/events?site=default&from={from}&to={to}&format=json"
        )),
        Some(TOKEN),
    );
    assert_eq!(status, 200, "{exported}");
    match exported {
        serde_json::Value::Array(events) => events,
        other => panic!("not a JSON array of events: {other}"),
    }
}

/// Page and referrer URLs that `protocol::plain_url` leaves to the WHATWG parser — IP
/// addresses, hex IPv4, punycode and Unicode hosts, user info, upper-case schemes, default
/// ports, dot segments (also percent-encoded), backslashes — sent by a browser-like client to
/// the real binary: what is stored (read back through the export) is what the parser makes
/// of them, and the plain ones next to them are stored as written.
#[test]
fn urls_the_fast_path_refuses_are_stored_as_the_url_parser_reads_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ff = Footfall::start(dir.path(), &[]);
    // (page, referrer, stored host, stored path, stored referrer host)
    let cases: &[(&str, &str, &str, &str, Option<&str>)] = &[
        ("http://127.0.0.1:8080/a", "", "127.0.0.1", "/a", None),
        ("http://0x7f.1/x", "", "127.0.0.1", "/x", None),
        ("http://[::1]:8080/v6", "", "[::1]", "/v6", None),
        (
            "https://XN--BCHER-KVA.example/b",
            "",
            "xn--bcher-kva.example",
            "/b",
            None,
        ),
        (
            "https://bücher.example/b",
            "",
            "xn--bcher-kva.example",
            "/b",
            None,
        ),
        (
            "https://user:pw@Example.COM/p",
            "",
            "example.com",
            "/p",
            None,
        ),
        ("HTTPS://EXAMPLE.com:443/x", "", "example.com", "/x", None),
        (
            "https://example.com/a/%2e%2E/b",
            "",
            "example.com",
            "/b",
            None,
        ),
        (
            "https://example.com/a/./b/../c",
            "",
            "example.com",
            "/a/c",
            None,
        ),
        ("https://example.com/a\\b", "", "example.com", "/a/b", None),
        (
            "https://example.com/r",
            "https://someone@WWW.Other.EXAMPLE:8443/x",
            "example.com",
            "/r",
            Some("other.example"),
        ),
        (
            "https://example.com/r",
            "http://0x7f.0.0.1/x",
            "example.com",
            "/r",
            Some("127.0.0.1"),
        ),
        // Plain: stored as written.
        (
            "https://example.com/docs/a-b_c~d",
            "",
            "example.com",
            "/docs/a-b_c~d",
            None,
        ),
        (
            "https://shop.example:8443/p?utm_source=x",
            "https://news.example/",
            "shop.example",
            "/p",
            Some("news.example"),
        ),
    ];
    let ts = now_ms();
    let events: Vec<serde_json::Value> = cases
        .iter()
        .enumerate()
        .map(|(i, (page, referrer, ..))| {
            let mut e = serde_json::json!({
                "event": "page_view",
                "eventId": format!("url-case-{i:02}"),
                "page": page,
                "sessionId": format!("url-session-{i}"),
                "timestamp": ts,
            });
            if !referrer.is_empty() {
                e["referrer"] = serde_json::json!(referrer);
            }
            e
        })
        .collect();
    let body = serde_json::json!({ "site": "default", "events": events }).to_string();
    let (status, answer) = post(&ff.url("/api/batch"), "text/plain;charset=UTF-8", &body);
    assert!((200..300).contains(&status), "{status} {answer}");
    ff.wait_caught_up();

    let exported = exported_events(&ff, ts - 60_000, ts + 60_000);
    let stored: std::collections::HashMap<String, &serde_json::Value> = exported
        .iter()
        .map(|e| (e["eventId"].as_str().expect("eventId").to_string(), e))
        .collect();
    assert_eq!(stored.len(), cases.len(), "{exported:?}");
    for (i, (page, referrer, host, path, referrer_host)) in cases.iter().enumerate() {
        let e = stored[&format!("url-case-{i:02}")];
        assert_eq!(
            (
                e["host"].as_str(),
                e["path"].as_str(),
                e["referrerHost"].as_str()
            ),
            (Some(*host), Some(*path), *referrer_host),
            "page {page:?}, referrer {referrer:?}: {e}"
        );
    }
}

/// The pageviews of site `default` with `from <= ts < to`, from the summary.
fn pageviews_between(ff: &Footfall, from: i64, to: i64) -> serde_json::Value {
    let (status, body) = get(
        &ff.url(&format!(
            "/api/stats/summary?site=default&from={from}&to={to}"
        )),
        Some(TOKEN),
    );
    assert_eq!(status, 200, "{body}");
    body["pageviews"].clone()
}

/// An operator upgrades while events still wait in the journal: the version before wrote
/// each record as JSON documents, one per line. The new binary stores them beside the compact
/// records it wrote itself, each once (also after another restart), and dead-letters a line
/// that is not an event without losing the lines around it.
#[test]
fn events_an_earlier_version_left_in_the_journal_are_stored_by_the_new_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ts = now_ms() - 60_000;
    let event = |i: i64| {
        let mut e = protocol::fixture::EventBuilder::new("default", "page_view", ts + i)
            .id(format!("waiting-{i}"))
            .path(format!("/waiting/{i}"))
            .build();
        e.received_at = e.ts;
        e
    };
    {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let (journal, _reader) =
            journal::open(journal::JournalConfig::new(dir.path().join("journal")))
                .expect("journal");
        let mut json_lines = Vec::new();
        for i in 0..3 {
            json_lines.extend(protocol::event::encode(&event(i)).expect("json"));
            json_lines.push(b'\n');
            if i == 1 {
                json_lines.extend_from_slice(b"{\"not\":\"an event\"}\n");
            }
        }
        let compact = processor::source::journal::encode_record(&[event(3), event(4)]);
        for record in [json_lines, compact] {
            runtime.block_on(journal.append(record)).expect("append");
        }
    }

    let pageviews = |ff: &Footfall| pageviews_between(ff, ts - 1, ts + 1_000);
    let ff = Footfall::start(dir.path(), &[]);
    ff.wait_caught_up();
    assert_eq!(pageviews(&ff), 5);
    let stored: Vec<String> = exported_events(&ff, ts - 1, ts + 1_000)
        .iter()
        .map(|e| e["path"].as_str().expect("path").to_string())
        .collect();
    assert_eq!(
        stored,
        [
            "/waiting/0",
            "/waiting/1",
            "/waiting/2",
            "/waiting/3",
            "/waiting/4"
        ]
    );
    let dead_letters = std::fs::read_to_string(dir.path().join("journal/dead-letters.ndjson"))
        .expect("dead letters");
    assert_eq!(dead_letters.lines().count(), 1, "{dead_letters}");
    assert!(dead_letters.contains(r#"an event"#), "{dead_letters}");
    assert!(ff.stop().success());

    let ff = Footfall::start(dir.path(), &[]);
    ff.wait_caught_up();
    assert_eq!(pageviews(&ff), 5, "each counted once after another restart");
}

/// An operator upgrades: the data folder was written by a footfall from before schema 5,
/// whose store kept every event as JSON text. The new binary opens it in place, keeps
/// answering for the old events, stores new ones in the compact form beside them, and its
/// export gives every event, old and new, as the same JSON documents.
#[test]
fn a_store_of_json_documents_is_upgraded_in_place_by_the_new_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ts = now_ms() - 60_000;
    let old: Vec<protocol::Event> = (0..5)
        .map(|i| {
            let mut e = protocol::fixture::EventBuilder::new("default", "page_view", ts + i)
                .id(format!("before-upgrade-{i}"))
                .session("old-session")
                .path(format!("/old/{i}"))
                .build();
            e.received_at = e.ts;
            e
        })
        .collect();
    {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let store = processor::SqliteStore::open(processor::store::SqliteConfig::new(dir.path()))
            .expect("open store");
        runtime
            .block_on(processor::Store::insert_batch(&store, old.clone().into()))
            .expect("insert");
    }
    // What the version before wrote: JSON text documents, schema 4.
    processor::store::rewrite_as_schema_4(&dir.path().join("footfall.db"), &old)
        .expect("rewrite as schema 4");

    let ff = Footfall::start(dir.path(), &[]);
    let pageviews = || pageviews_between(&ff, ts - 1, ts + 1_000);
    assert_eq!(pageviews(), 5, "old events still count");
    let new_events: Vec<String> = (0..3)
        .map(|i| {
            format!(
                r#"{{"event":"page_view","eventId":"after-upgrade-{i}","page":"https://example.com/new/{i}","sessionId":"new-session","timestamp":{}}}"#,
                ts + 100 + i
            )
        })
        .collect();
    let body = format!(
        r#"{{"site":"default","events":[{}]}}"#,
        new_events.join(",")
    );
    let (status, answer) = post(&ff.url("/api/batch"), "text/plain;charset=UTF-8", &body);
    assert!((200..300).contains(&status), "{status} {answer}");
    ff.wait_caught_up();
    assert_eq!(pageviews(), 8);

    let exported = exported_events(&ff, ts - 1, ts + 1_000);
    let paths: Vec<(&str, &str)> = exported
        .iter()
        .map(|e| {
            assert_eq!(e["v"], 1, "a versioned JSON document: {e}");
            (
                e["eventId"].as_str().expect("eventId"),
                e["path"].as_str().expect("path"),
            )
        })
        .collect();
    assert_eq!(
        paths,
        [
            ("before-upgrade-0", "/old/0"),
            ("before-upgrade-1", "/old/1"),
            ("before-upgrade-2", "/old/2"),
            ("before-upgrade-3", "/old/3"),
            ("before-upgrade-4", "/old/4"),
            ("after-upgrade-0", "/new/0"),
            ("after-upgrade-1", "/new/1"),
            ("after-upgrade-2", "/new/2"),
        ]
    );
    drop(ff);
    let db = rusqlite::Connection::open(dir.path().join("footfall.db")).expect("open file");
    let forms: Vec<(String, i64)> = db
        .prepare("SELECT typeof(doc), count(*) FROM events GROUP BY 1 ORDER BY 1")
        .expect("query")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(forms, [("blob".to_string(), 3), ("text".to_string(), 5)]);
}
