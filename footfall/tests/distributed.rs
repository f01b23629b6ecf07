//! Distributed mode as operators run it: real `footfall collector` and `footfall processor`
//! processes, a real Kafka-protocol broker (tansu, see `common::kafka`), real HTTP. Every
//! fault test ends with the count check of the durability contract: every event a collector
//! acknowledged is stored, exactly once.
//!
//! The tests take a global lock and run one at a time: each starts a broker and several
//! processes, and the CI machine has two cores.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::kafka::{eventually, register_site, run_to_exit, Moto, Service, Tansu};
use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a load run saw: the event ids the collectors acknowledged (202) and how many
/// requests were refused with 503 (and retried, as the tracker does).
#[derive(Default)]
struct LoadResult {
    acked: BTreeSet<String>,
    refused: u64,
}

/// A client that sends `batches` batches of `per_batch` events as visitor `user`, each batch
/// retried on 503 until acknowledged (like the tracker), one request at a time so the
/// visitor's events are sent in order. `props.n` numbers the events in send order.
fn client(
    urls: Vec<String>,
    site: &'static str,
    user: String,
    batches: usize,
    per_batch: usize,
    pause: Duration,
    refused: Arc<AtomicU64>,
) -> JoinHandle<Result<BTreeSet<String>, String>> {
    std::thread::spawn(move || {
        let mut acked = BTreeSet::new();
        for b in 0..batches {
            let ids: Vec<String> = (0..per_batch)
                .map(|i| format!("{user}-{b:04}-{i:03}"))
                .collect();
            let events: Vec<String> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    format!(
                        r#"{{"event":"page_view","eventId":"{id}","page":"/p{i}","userId":"{user}","props":{{"n":{}}}}}"#,
                        b * per_batch + i
                    )
                })
                .collect();
            let body = format!(r#"{{"site":"{site}","events":[{}]}}"#, events.join(","));
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut attempt = 0usize;
            loop {
                let url = &urls[(b + attempt) % urls.len()];
                attempt += 1;
                let result = ureq::post(url)
                    .set("Content-Type", "text/plain")
                    .set("User-Agent", CHROME)
                    .timeout(Duration::from_secs(15))
                    .send_string(&body);
                match result {
                    Ok(resp) if resp.status() == 202 => {
                        let reply: serde_json::Value =
                            serde_json::from_str(&resp.into_string().unwrap_or_default())
                                .unwrap_or_default();
                        assert_eq!(
                            reply["accepted"].as_u64(),
                            Some(per_batch as u64),
                            "{reply}"
                        );
                        acked.extend(ids.iter().cloned());
                        break;
                    }
                    Err(ureq::Error::Status(503, resp)) => {
                        assert!(
                            resp.header("Retry-After").is_some(),
                            "503 without Retry-After"
                        );
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(resp) => panic!("unexpected status {}", resp.status()),
                    Err(ureq::Error::Status(code, _)) => panic!("unexpected status {code}"),
                    // A collector being killed or restarted: retry like the tracker would.
                    Err(ureq::Error::Transport(_)) => {}
                }
                if Instant::now() > deadline {
                    return Err(format!("batch {b} of {user} never acknowledged"));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            std::thread::sleep(pause);
        }
        Ok(acked)
    })
}

struct Load {
    clients: Vec<JoinHandle<Result<BTreeSet<String>, String>>>,
    refused: Arc<AtomicU64>,
}

impl Load {
    fn start(
        urls: &[String],
        site: &'static str,
        users: usize,
        batches: usize,
        per_batch: usize,
        pause: Duration,
    ) -> Load {
        let refused = Arc::new(AtomicU64::new(0));
        let clients = (0..users)
            .map(|u| {
                let urls = urls.iter().map(|u| format!("{u}/api/batch")).collect();
                client(
                    urls,
                    site,
                    format!("user{u}"),
                    batches,
                    per_batch,
                    pause,
                    refused.clone(),
                )
            })
            .collect();
        Load { clients, refused }
    }

    fn refused_so_far(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    /// Waits for every client; on failure panics with the given services' logs.
    fn finish(self, services: &[&Service]) -> LoadResult {
        let mut acked = BTreeSet::new();
        for c in self.clients {
            match c.join().expect("client thread") {
                Ok(ids) => acked.extend(ids),
                Err(e) => {
                    let logs: Vec<String> = services.iter().map(|s| s.log_text()).collect();
                    panic!("{e}\n{}", logs.join("\n----\n"));
                }
            }
        }
        LoadResult {
            acked,
            refused: self.refused.load(Ordering::SeqCst),
        }
    }
}

/// Every stored row of a processor's SQLite store, in insertion order: (eventId, visitorId, n).
/// The JSON document of an event as the SQLite store keeps it (compact form, or JSON).
fn stored_document(doc: &[u8]) -> String {
    let event = protocol::compact::decode_stored(doc).expect("a stored event");
    String::from_utf8(protocol::event::encode(&event).expect("json")).expect("utf-8")
}

fn stored_rows(data_dir: &Path) -> Vec<(String, String, i64)> {
    let db = rusqlite::Connection::open_with_flags(
        data_dir.join("footfall.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open store");
    let mut stmt = db
        .prepare("SELECT event_id, doc FROM events ORDER BY seq")
        .expect("query");
    let rows = stmt
        .query_map([], |r| {
            let doc: serde_json::Value =
                serde_json::from_str(&stored_document(&r.get::<_, Vec<u8>>(1)?))
                    .unwrap_or_default();
            Ok((
                r.get(0)?,
                doc["visitorId"].as_str().unwrap_or_default().to_string(),
                doc["props"]["n"].as_i64().unwrap_or(-1),
            ))
        })
        .expect("rows")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows");
    rows
}

/// The count check: exactly the acknowledged events are stored, none twice.
fn assert_exactly_once(rows: &[(String, String, i64)], acked: &BTreeSet<String>) {
    let ids: BTreeSet<&String> = rows.iter().map(|r| &r.0).collect();
    assert_eq!(ids.len(), rows.len(), "duplicates in the store");
    let missing: Vec<_> = acked
        .iter()
        .filter(|id| !ids.contains(id))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored (first 5): {missing:?}"
    );
    assert_eq!(
        rows.len(),
        acked.len(),
        "stored events that were never acknowledged"
    );
}

fn wait_stored(processor: &Service, site: &str, expected: usize) {
    let ok = eventually(Duration::from_secs(60), || {
        processor.stored(site) >= expected as u64
    });
    assert!(
        ok,
        "processor stored {} of {expected} (uncommitted {}, consumed {}):\n{}",
        processor.stored(site),
        processor.metric("footfall_processor_uncommitted_messages"),
        processor.metric("footfall_processor_messages_consumed_total"),
        processor.log_text()
    );
}

/// One answer, reduced to what must be the same in every mode: status, every header but the
/// date and the length, and the JSON body without its timestamp (or, for `/metrics`, the
/// media type only: each mode has its own metrics).
fn answer_shape(base: &str, method: &str, path: &str) -> (u16, Vec<(String, String)>, String) {
    let resp = match ureq::request(method, &format!("{base}{path}"))
        .set("Accept-Encoding", "identity")
        .call()
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let mut headers: Vec<(String, String)> = resp
        .headers_names()
        .into_iter()
        .filter(|h| !matches!(h.as_str(), "date" | "content-length"))
        .map(|h| {
            let v = resp.header(&h).unwrap_or("").to_string();
            (h, v)
        })
        .collect();
    headers.sort();
    let status = resp.status();
    let text = resp.into_string().unwrap_or_default();
    let body = if path == "/metrics" {
        String::new()
    } else {
        let mut json: serde_json::Value =
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        if let Some(t) = json.get_mut("timestamp") {
            // RFC 3339 in both, different instants.
            assert!(t.as_str().is_some_and(|t| t.ends_with('Z')), "{t}");
            *t = serde_json::Value::Null;
        }
        json.to_string()
    };
    (status, headers, body)
}

/// Issue 14 item 2: the same request gets the same status, headers and health answer from
/// `footfall standalone`, `footfall collector` and `footfall processor` — all three serve
/// health through `footfall_http::Health` behind the same layer.
#[test]
fn every_mode_answers_health_with_the_same_headers_and_bodies() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Tansu::start();
    let collector = Service::collector(&broker.brokers(), dir.path(), &[]);
    let processor = Service::processor(&broker.brokers(), &dir.path().join("proc"), &[]);
    let standalone = common::Footfall::start(&dir.path().join("standalone"), &[]);
    let modes = [
        ("standalone", standalone.base.clone()),
        ("collector", collector.url("")),
        ("processor", processor.url("")),
    ];
    let requests = [
        ("GET", "/api/health"),
        ("GET", "/livez"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("HEAD", "/api/health"),
        ("POST", "/livez"),
        ("GET", "/api/nope"),
        ("GET", "/nope"),
    ];
    for (method, path) in requests {
        let answers: Vec<_> = modes
            .iter()
            .map(|(mode, base)| (mode, answer_shape(base, method, path)))
            .collect();
        for (mode, answer) in &answers[1..] {
            assert_eq!(
                &answers[0].1, answer,
                "{method} {path}: {mode} answers unlike standalone"
            );
        }
        let (status, headers, _) = &answers[0].1;
        let header = |name: &str| {
            headers
                .iter()
                .find(|(h, _)| h == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(header("x-frame-options"), Some("DENY"), "{path}");
        if method == "GET" && !path.contains("nope") {
            assert_eq!(*status, 200, "{path}");
            assert_eq!(header("cache-control"), Some("no-store"), "{path}");
        }
    }
    let (_, _, health) = answer_shape(&modes[2].1, "GET", "/api/health");
    assert_eq!(
        health,
        r#"{"success":true,"status":"healthy","timestamp":null}"#
    );
}

#[test]
fn end_to_end_exactly_once_and_in_order_per_visitor() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Tansu::start();
    let collector = Service::collector(&broker.brokers(), dir.path(), &[]);
    let data = dir.path().join("proc");
    let mut processor = Service::processor(&broker.brokers(), &data, &[]);
    register_site(&processor, &[&collector], "e2e.test");

    let load = Load::start(&[collector.url("")], "e2e.test", 6, 20, 10, Duration::ZERO);
    let result = load.finish(&[&collector, &processor]);
    assert_eq!(result.acked.len(), 6 * 20 * 10);
    assert_eq!(result.refused, 0, "no 503s expected with a healthy broker");
    wait_stored(&processor, "e2e.test", result.acked.len());
    assert!(collector.metric("footfall_kafka_produced_total") >= 1200.0);
    assert!(
        processor.stop(),
        "graceful stop exits 0:\n{}",
        processor.log_text()
    );

    let rows = stored_rows(&data);
    assert_exactly_once(&rows, &result.acked);
    // One visitor's events share a key, hence a partition, hence their order.
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    for (_, visitor, n) in &rows {
        let prev = last.insert(visitor, *n).unwrap_or(-1);
        assert!(
            *n > prev,
            "visitor {visitor}: event {n} stored after {prev}"
        );
    }
    assert_eq!(last.len(), 6);

    // The graceful stop committed everything it stored: a restarted processor re-reads
    // nothing (no duplicates offered to the store) and stores nothing new.
    processor.restart();
    // Long enough to join the group and fetch (a fresh member gets data within ~5 s here).
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(
        processor.metric("footfall_processor_messages_consumed_total"),
        0.0,
        "redelivered after a graceful stop:\n{}",
        processor.log_text()
    );
    assert_eq!(processor.stored("e2e.test"), 1200);
}

#[test]
fn kill_9_the_processor_mid_stream_and_restart_it() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Tansu::start();
    let collector = Service::collector(&broker.brokers(), dir.path(), &[]);
    let data = dir.path().join("proc");
    let mut processor = Service::processor(&broker.brokers(), &data, &["--batch-max", "50"]);
    register_site(&processor, &[&collector], "kill.test");

    let load = Load::start(
        &[collector.url("")],
        "kill.test",
        4,
        40,
        10,
        Duration::from_millis(20),
    );
    let ok = eventually(Duration::from_secs(30), || {
        processor.stored("kill.test") >= 200
    });
    assert!(ok, "processor made no progress:\n{}", processor.log_text());
    processor.kill9();
    std::thread::sleep(Duration::from_millis(500));
    processor.restart();
    let result = load.finish(&[&collector, &processor]);
    wait_stored(&processor, "kill.test", result.acked.len());
    assert!(processor.stop());
    assert_exactly_once(&stored_rows(&data), &result.acked);
}

#[test]
fn broker_outage_gives_503_and_loses_nothing() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let moto = Moto::start();
    let mut broker = Tansu::start_s3(&moto);
    let collector = Service::collector(
        &broker.brokers(),
        dir.path(),
        &["--delivery-timeout-ms", "3000"],
    );
    let data = dir.path().join("proc");
    let mut processor = Service::processor(&broker.brokers(), &data, &[]);
    register_site(&processor, &[&collector], "outage.test");

    let load = Load::start(
        &[collector.url("")],
        "outage.test",
        3,
        150,
        5,
        Duration::from_millis(100),
    );
    let ok = eventually(Duration::from_secs(30), || {
        processor.stored("outage.test") >= 100
    });
    assert!(
        ok,
        "no progress before the outage:\n{}",
        processor.log_text()
    );
    broker.stop();
    // During the outage the collector refuses (503, Retry-After) and says it is unready.
    let ok = eventually(Duration::from_secs(15), || {
        ureq::get(&collector.url("/readyz")).call().is_err()
    });
    assert!(
        ok,
        "collector stayed ready without a broker:\n{}",
        collector.log_text()
    );
    let refused_before = load.refused_so_far();
    let ok = eventually(Duration::from_secs(15), || {
        load.refused_so_far() > refused_before
    });
    assert!(ok, "no 503 during the outage");
    broker.start_again();
    let ok = eventually(Duration::from_secs(30), || {
        ureq::get(&collector.url("/readyz")).call().is_ok()
    });
    assert!(
        ok,
        "collector did not become ready again:\n{}",
        collector.log_text()
    );

    let result = load.finish(&[&collector, &processor]);
    assert!(result.refused > 0);
    wait_stored(&processor, "outage.test", result.acked.len());
    assert!(processor.stop());
    assert_exactly_once(&stored_rows(&data), &result.acked);
}

#[test]
fn two_processors_share_the_group_and_survive_losing_one() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Tansu::start();
    let collector = Service::collector(&broker.brokers(), dir.path(), &[]);
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let mut a = Service::processor(&broker.brokers(), &data_a, &["--batch-max", "50"]);
    let mut b = Service::processor(&broker.brokers(), &data_b, &["--batch-max", "50"]);
    register_site(&a, &[&collector], "group.test");

    let load = Load::start(
        &[collector.url("")],
        "group.test",
        8,
        40,
        10,
        Duration::from_millis(100),
    );
    let ok = eventually(Duration::from_secs(30), || {
        a.stored("group.test") > 0 && b.stored("group.test") > 0
    });
    assert!(
        ok,
        "the two processors did not share the partitions:\nA:\n{}\nB:\n{}",
        a.log_text(),
        b.log_text()
    );
    a.kill9();
    let stored_at_kill = stored_rows(&data_a).len() + b.stored("group.test") as usize;
    let result = load.finish(&[&collector, &b]);
    assert!(
        stored_at_kill < result.acked.len() / 2,
        "A must die mid-stream ({stored_at_kill} of {} stored at the kill)",
        result.acked.len()
    );
    // B takes over A's partitions once A's session times out, from A's committed offsets.
    let rows_a = stored_rows(&data_a);
    let ok = eventually(Duration::from_secs(60), || {
        let in_a: BTreeSet<&String> = rows_a.iter().map(|r| &r.0).collect();
        let stored = b.stored("group.test") as usize;
        let in_b = stored_rows(&data_b);
        let union: BTreeSet<&String> = in_a
            .iter()
            .copied()
            .chain(in_b.iter().map(|r| &r.0))
            .collect();
        union.len() >= result.acked.len() || stored > result.acked.len()
    });
    assert!(ok, "events lost after the rebalance:\n{}", b.log_text());
    assert!(b.stop());
    let rows_b = stored_rows(&data_b);
    // Each store holds each event at most once; between the two stores an event may appear
    // twice (A stored it, was killed before committing, B re-read it) — with one shared
    // store (MongoDB) the unique eventId index absorbs exactly that redelivery.
    for rows in [&rows_a, &rows_b] {
        let ids: BTreeSet<&String> = rows.iter().map(|r| &r.0).collect();
        assert_eq!(ids.len(), rows.len(), "duplicates within one store");
    }
    let union: BTreeSet<String> = rows_a
        .iter()
        .chain(rows_b.iter())
        .map(|r| r.0.clone())
        .collect();
    assert_eq!(union, result.acked, "stored (union) != acknowledged");
    eprintln!(
        "group test: acked {}, A {}, B {}, redelivered across stores {}",
        result.acked.len(),
        rows_a.len(),
        rows_b.len(),
        rows_a.len() + rows_b.len() - union.len()
    );
}

fn produce_raw(brokers: &str, topic: &str, partition: i32, messages: &[(&str, Vec<u8>)]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .create()
        .expect("producer");
    for (key, payload) in messages {
        let headers = OwnedHeaders::new().insert(Header {
            key: "footfall-schema",
            value: Some("1"),
        });
        producer
            .send(
                BaseRecord::to(topic)
                    .partition(partition)
                    .key(*key)
                    .payload(payload)
                    .headers(headers),
            )
            .expect("enqueue");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
}

fn valid_event(id: &str, site: &str) -> Vec<u8> {
    let now = now_ms();
    format!(
        r#"{{"v":1,"eventId":"{id}","site":"{site}","name":"page_view","ts":{now},"receivedAt":{now},"visitorId":"v1","path":"/","device":"desktop","browser":"Chrome","os":"Linux"}}"#
    )
    .into_bytes()
}

#[test]
fn poison_messages_go_to_the_dlq_and_do_not_stall_the_partition() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Tansu::start();
    let data = dir.path().join("proc");
    let mut processor = Service::processor(&broker.brokers(), &data, &[]);
    let brokers = broker.brokers();
    let mut messages = vec![
        ("k", b"this is not json".to_vec()),
        ("k", br#"{"v":99,"eventId":"from-the-future"}"#.to_vec()),
        ("k", valid_event("bad-site-0001", "not a site!")),
    ];
    let good: Vec<(String, Vec<u8>)> = (0..20)
        .map(|i| {
            (
                format!("k{i}"),
                valid_event(&format!("poison-good-{i:03}"), "dlq.test"),
            )
        })
        .collect();
    messages.extend(good.iter().map(|(k, v)| (k.as_str(), v.clone())));
    produce_raw(&brokers, "footfall.events", 0, &messages);

    wait_stored(&processor, "dlq.test", 20);
    assert!(eventually(Duration::from_secs(10), || processor
        .metric("footfall_processor_dead_lettered_total")
        >= 3.0));
    assert!(processor.stop());
    assert_eq!(stored_rows(&data).len(), 20);

    // The DLQ holds the three with their reason and origin.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "dlq-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("footfall.events.dlq", 0, Offset::Beginning)
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let mut dead = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while dead.len() < 3 && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let mut headers = BTreeMap::new();
            if let Some(h) = m.headers() {
                for hdr in h.iter() {
                    headers.insert(
                        hdr.key.to_string(),
                        String::from_utf8_lossy(hdr.value.unwrap_or_default()).into_owned(),
                    );
                }
            }
            dead.push((m.payload().map(<[u8]>::to_vec), headers));
        }
    }
    assert_eq!(dead.len(), 3, "dead letters: {dead:?}");
    assert_eq!(dead[0].0.as_deref(), Some(&b"this is not json"[..]));
    for (i, (_, headers)) in dead.iter().enumerate() {
        assert_eq!(
            headers.get("footfall-source-topic").map(String::as_str),
            Some("footfall.events")
        );
        assert_eq!(
            headers.get("footfall-source-partition").map(String::as_str),
            Some("0")
        );
        assert_eq!(headers.get("footfall-source-offset"), Some(&i.to_string()));
        assert!(headers
            .get("footfall-dlq-reason")
            .is_some_and(|r| !r.is_empty()));
    }
    assert!(
        dead[1].1["footfall-dlq-reason"].contains("version"),
        "{:?}",
        dead[1].1
    );
    assert!(
        dead[2].1["footfall-dlq-reason"].contains("site"),
        "{:?}",
        dead[2].1
    );
}

#[test]
fn collectors_of_one_deployment_agree_on_the_daily_salt() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Tansu::start();
    let one = Service::collector(&broker.brokers(), dir.path(), &[]);
    let two = Service::collector(&broker.brokers(), dir.path(), &[]);
    let data = dir.path().join("proc");
    let processor = Service::processor(&broker.brokers(), &data, &[]);
    register_site(&processor, &[&one, &two], "salt.test");
    // The same browser (same IP, same user agent, no user id) through both collectors.
    for (i, c) in [&one, &two, &one, &two].iter().enumerate() {
        let body = format!(
            r#"{{"site":"salt.test","events":[{{"event":"page_view","eventId":"salt-test-{i:03}","page":"/"}}]}}"#
        );
        let (status, reply) = post(&c.url("/api/batch"), "text/plain", &body);
        assert_eq!(status, 202, "{reply}");
    }
    wait_stored(&processor, "salt.test", 4);
    let (status, summary) = get(
        &processor.url("/api/stats/summary?site=salt.test"),
        Some(TOKEN),
    );
    assert_eq!(status, 200);
    assert_eq!(summary["visitors"].as_u64(), Some(1), "{summary}");

    // Privacy: what went through Kafka into the store has neither the IP nor the user agent.
    let mut processor = processor;
    assert!(processor.stop());
    let db = rusqlite::Connection::open(data.join("footfall.db")).expect("open store");
    let docs: Vec<Vec<u8>> = db
        .prepare("SELECT doc FROM events")
        .expect("query")
        .query_map([], |r| r.get(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(docs.len(), 4);
    for doc in docs {
        // The bytes as stored, and the event they hold.
        for text in [
            String::from_utf8_lossy(&doc).into_owned(),
            stored_document(&doc),
        ] {
            assert!(
                !text.contains("127.0.0.1") && !text.contains(CHROME),
                "{text}"
            );
        }
    }
}

#[test]
fn bad_kafka_settings_fail_at_start_with_a_clear_message() {
    let _serial = serial();
    let closed = free_port();
    let unreachable = format!("127.0.0.1:{closed}");
    let started = Instant::now();
    let (ok, out) = run_to_exit(
        &[
            "collector",
            "--listen",
            "127.0.0.1:0",
            "--brokers",
            &unreachable,
            "--kafka-startup-timeout-secs",
            "2",
        ],
        Duration::from_secs(20),
    );
    assert!(
        !ok && out.contains("cannot reach the Kafka brokers") && out.contains(&unreachable),
        "{out}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));

    let (ok, out) = run_to_exit(
        &[
            "processor",
            "--listen",
            "127.0.0.1:0",
            "--brokers",
            &unreachable,
            "--admin-token",
            TOKEN,
            "--kafka-startup-timeout-secs",
            "2",
        ],
        Duration::from_secs(20),
    );
    assert!(
        !ok && out.contains("cannot reach the Kafka brokers"),
        "{out}"
    );

    let (ok, out) = run_to_exit(
        &["collector", "--listen", "127.0.0.1:0", "--partitions", "0"],
        Duration::from_secs(20),
    );
    assert!(!ok && out.contains("at least 1 partition"), "{out}");
    let (ok, out) = run_to_exit(
        &[
            "collector",
            "--listen",
            "127.0.0.1:0",
            "--events-topic",
            "no spaces please",
        ],
        Duration::from_secs(20),
    );
    assert!(!ok && out.contains("not a valid Kafka topic name"), "{out}");
    let (ok, out) = run_to_exit(
        &["processor", "--listen", "127.0.0.1:0"],
        Duration::from_secs(20),
    );
    assert!(!ok && out.contains("admin token"), "{out}");

    // Existing topics are left as they are (a different partition count is only logged).
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Tansu::start();
    let first = Service::collector(&broker.brokers(), dir.path(), &["--partitions", "3"]);
    let second = Service::collector(&broker.brokers(), dir.path(), &["--partitions", "5"]);
    let ok = eventually(Duration::from_secs(5), || {
        second.log_text().contains("different partition count")
    });
    assert!(ok, "{}", second.log_text());
    drop((first, second));
    let _ = AtomicBool::new(false);
}

/// The site registry in a distributed deployment: a site added on a processor is accepted by
/// every collector (they follow the compacted sites topic), removed is refused again, and a
/// collector that starts later reads the whole registry before it takes events.
#[test]
fn collectors_follow_the_site_registry_of_the_processors() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Tansu::start();
    let early = Service::collector(&broker.brokers(), dir.path(), &[]);
    let data = dir.path().join("proc");
    let processor = Service::processor(&broker.brokers(), &data, &[]);
    let event = |c: &Service, site: &str| {
        post(
            &c.url("/api/batch"),
            "text/plain",
            &format!(r#"{{"site":"{site}","events":[{{"event":"page_view"}}]}}"#),
        )
    };
    let (status, body) = event(&early, "reg.test");
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "unknown_site");

    register_site(&processor, &[&early], "reg.test");
    assert_eq!(event(&early, "reg.test").0, 202);
    let late = Service::collector(&broker.brokers(), dir.path(), &[]);
    assert_eq!(event(&late, "reg.test").0, 202, "{}", late.log_text());

    let removed = ureq::delete(&processor.url("/api/sites/reg.test"))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .map(|r| r.status());
    assert_eq!(removed.ok(), Some(200));
    for c in [&early, &late] {
        assert!(
            eventually(Duration::from_secs(15), || event(c, "reg.test").0 == 403),
            "{}",
            c.log_text()
        );
    }
    wait_stored(&processor, "reg.test", 2);
    // The opt-out restores accept-everything.
    let open = Service::collector(&broker.brokers(), dir.path(), &["--accept-any-site"]);
    assert_eq!(event(&open, "anything.test").0, 202);
}

/// Issue 12 finding 11: when the salt cache misses (a new day, a fresh collector), every
/// request used to run its own agreement round through Kafka at once (a producer, a
/// consumer and a candidate record each). Now one round runs and the others wait for it:
/// a burst of first requests leaves exactly one candidate for the day in `footfall.salts`.
#[test]
fn a_burst_of_first_requests_agrees_on_the_salt_once() {
    const REQUESTS: usize = 64;
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Tansu::start();
    let brokers = broker.brokers();
    let collector = Service::collector(&brokers, dir.path(), &["--accept-any-site"]);
    assert!(
        eventually(Duration::from_secs(30), || get(
            &collector.url("/readyz"),
            None
        )
        .0 == 200),
        "collector never ready:\n{}",
        collector.log_text()
    );
    let day = now_ms().div_euclid(86_400_000);
    let start = Arc::new(std::sync::Barrier::new(REQUESTS));
    let requests: Vec<JoinHandle<u16>> = (0..REQUESTS)
        .map(|i| {
            let (url, start) = (collector.url("/api/batch"), start.clone());
            std::thread::spawn(move || {
                let body = format!(
                    r#"{{"site":"burst.test","events":[{{"event":"page_view","eventId":"salt-burst-{i:03}","page":"/"}}]}}"#
                );
                start.wait();
                post(&url, "text/plain", &body).0
            })
        })
        .collect();
    let statuses: Vec<u16> = requests
        .into_iter()
        .map(|r| r.join().expect("request thread"))
        .collect();
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
    if now_ms().div_euclid(86_400_000) != day {
        // The burst straddled midnight: two days' rounds are right, and this run proves nothing.
        return;
    }

    // Every record of the salts topic: one candidate for today, from one round.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "salt-burst-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("footfall.salts", 0, Offset::Beginning)
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let mut today = Vec::new();
    // Read until the log has been quiet for a while: a second round would have written by then.
    let mut quiet_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(20);
    while quiet_since.elapsed() < Duration::from_secs(3) && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            quiet_since = Instant::now();
            let key = m
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default();
            if key.starts_with(&format!("{day}:")) && m.payload().is_some() {
                today.push(key);
            }
        }
    }
    assert_eq!(
        today.len(),
        1,
        "{REQUESTS} concurrent cache misses wrote these candidates: {today:?}"
    );
}
