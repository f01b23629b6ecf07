//! Store benchmark: what rollups cost on insert and what they save on queries, as ratios
//! against baselines measured in the same run on the same server.
//!
//! 1. **Insert throughput**: events/s through `Store::insert_batch` of the MongoDB store
//!    (idempotent insert + rollup deltas, exactly once, with its compactor folding deltas
//!    meanwhile, and the final fold of what is left counted too) vs a bare unordered
//!    `insert_many` of the same documents into a collection with the same indexes and write
//!    concern — in alternating rounds, so both meet the same load on a shared machine.
//! 2. **"Last 30 days, top pages"** over a large synthetic data set: the store's breakdown
//!    (rollups + indexed edges) vs an aggregation pipeline that scans the raw events — for
//!    MongoDB and for the embedded SQLite store (vs a `GROUP BY` over its events table).
//!
//! Usage: `store-bench <mongodb uri> [--insert-events N] [--batch N] [--rounds N]
//! [--query-events N (0: insert only)] [--load-batch N] [--skip-sqlite] [--skip-mongo-query]`.
//! Lines starting with `RESULT` are what `bench/run` collects. `bench/store.sh` starts a server and runs it.
//! The driver is used directly here only for the baselines; the product code keeps MongoDB
//! types inside its store module.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mongodb::bson::{doc, Document};
use mongodb::options::{Acknowledgment, IndexOptions, WriteConcern};
use mongodb::{Client, IndexModel};
use processor::query::{BreakdownQuery, RangeQuery};
use processor::store::{MongoConfig, SqliteConfig};
use processor::{MongoStore, SqliteStore, Store};
use protocol::fixture::EventBuilder;
use protocol::stats::Breakdown;
use protocol::stats::Dimension;
use protocol::{Device, Event};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    uri: String,
    insert_events: usize,
    batch: usize,
    query_events: usize,
    load_batch: usize,
    rounds: usize,
    sqlite: bool,
    mongo_query: bool,
}

fn args() -> Res<Args> {
    let mut a = Args {
        uri: String::new(),
        insert_events: 10_000,
        batch: 100,
        query_events: 1_000_000,
        load_batch: 5_000,
        rounds: 4,
        sqlite: true,
        mongo_query: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> Res<usize> {
            Ok(it
                .next()
                .ok_or(format!("{name} needs a value"))?
                .replace('_', "")
                .parse()?)
        };
        match arg.as_str() {
            "--insert-events" => a.insert_events = num("--insert-events")?,
            "--batch" => a.batch = num("--batch")?.max(1),
            "--query-events" => a.query_events = num("--query-events")?,
            "--load-batch" => a.load_batch = num("--load-batch")?.max(1),
            "--rounds" => a.rounds = num("--rounds")?.max(1),
            "--skip-sqlite" => a.sqlite = false,
            // SecantusDB loads ~450 events/s through the store: 1M events take ~40 min.
            "--skip-mongo-query" => a.mongo_query = false,
            _ if a.uri.is_empty() && !arg.starts_with("--") => a.uri = arg,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if a.uri.is_empty() {
        return Err("usage: store-bench <mongodb uri> [options]".into());
    }
    Ok(a)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn unit(&mut self) -> f64 {
        (self.next() % 1_000_000) as f64 / 1_000_000.0
    }
}

/// `n` events between `from` and `to`, sorted by time, with skewed page popularity (a few
/// pages get most views, as on real sites) and realistic dimension spreads.
fn events(n: usize, from: i64, to: i64, sites: &[&str], tag: &str, seed: u64) -> Vec<Event> {
    let mut rng = Lcg(seed);
    let names = [
        "page_view",
        "page_view",
        "page_view",
        "page_view",
        "click",
        "session_start",
    ];
    let refs = [
        "news.ycombinator.com",
        "google.com",
        "t.co",
        "duckduckgo.com",
    ];
    let browsers = ["Firefox", "Chrome", "Safari", "Edge"];
    let oses = ["Linux", "Windows 10", "iOS", "Mac OS X", "Android"];
    let countries = ["IN", "US", "DE", "FR", "BR", "JP"];
    let visitors = (n / 5).max(1) as u64;
    let span = (to - from).max(1) as u64;
    let mut out: Vec<Event> = (0..n)
        .map(|i| {
            let ts = from + (rng.next() * 7919 % span) as i64;
            let page = (300.0 * rng.unit().powi(3)) as usize;
            let v = rng.next() % visitors;
            let pick =
                |r: &mut Lcg, xs: &[&str]| xs[(r.next() % xs.len() as u64) as usize].to_string();
            let session = format!("session-{v:08x}-{}", ts / 1_800_000);
            let mut e = EventBuilder::new(&pick(&mut rng, sites), &pick(&mut rng, &names), ts)
                .id(format!("{tag}-{i:09}"))
                .received_at(ts + 40)
                .visitor(format!("visitor-{v:08x}"))
                .session(session)
                .path(format!("/docs/page-{page}"))
                .screen("1920x1080")
                .lang("en-US")
                .country(pick(&mut rng, &countries))
                .device(
                    [Device::Desktop, Device::Mobile, Device::Tablet][(rng.next() % 3) as usize],
                )
                .browser(pick(&mut rng, &browsers))
                .os(pick(&mut rng, &oses))
                .build();
            e.referrer_host = rng.next().is_multiple_of(3).then(|| pick(&mut rng, &refs));
            e.utm_source = rng
                .next()
                .is_multiple_of(10)
                .then(|| "newsletter".to_string());
            e
        })
        .collect();
    out.sort_by_key(|e| e.ts);
    out
}

/// The document the raw baseline inserts: the event as the store writes it (dates for times).
fn raw_doc(e: &Event) -> Res<Document> {
    let mut d = mongodb::bson::to_document(e)?;
    d.insert("ts", mongodb::bson::DateTime::from_millis(e.ts));
    d.insert(
        "receivedAt",
        mongodb::bson::DateTime::from_millis(e.received_at),
    );
    Ok(d)
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn with_db(uri: &str, db: &str) -> String {
    // mongodb://host:port/?opts  →  mongodb://host:port/<db>?opts
    match uri.find("/?") {
        Some(i) => format!("{}/{db}{}", &uri[..i], &uri[i + 1..]),
        None => format!("{}/{db}", uri.trim_end_matches('/')),
    }
}

fn top(b: &Breakdown) -> Vec<(String, u64)> {
    b.rows.iter().map(|r| (r.value.clone(), r.count)).collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn time_breakdown(
    store: &dyn Store,
    q: &BreakdownQuery,
    runs: usize,
) -> Res<(f64, f64, Breakdown)> {
    let first = processor::history::breakdown(store, q.clone()).await?; // warm-up
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        processor::history::breakdown(store, q.clone()).await?;
        times.push(ms(t.elapsed()));
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[times.len() - 1], first))
}

#[tokio::main]
async fn main() -> Res<()> {
    let a = args()?;
    let run = format!("{}", now_ms() % 1_000_000_000);
    let client = Client::with_uri_str(&a.uri).await?;
    let durable = WriteConcern::builder()
        .w(Acknowledgment::Majority)
        .journal(true)
        .build();

    // ---- 1. insert throughput -------------------------------------------------------------
    // Side by side: the events go in `rounds` slices, each inserted raw then through the store,
    // so both see the same server load (other processes on the machine come and go).
    let now = now_ms();
    let live = events(
        a.insert_events,
        now - 3_600_000,
        now,
        &["a.example", "b.example", "c.example"],
        "ins",
        1,
    );
    println!("store-bench: MongoDB-protocol server at {}", a.uri);
    println!();
    println!(
        "1. insert throughput: {} events in batches of {} (last hour, 3 sites), {} alternating rounds",
        live.len(),
        a.batch,
        a.rounds
    );

    let raw_db = client.database(&format!("bench_raw_{run}"));
    let raw = raw_db.collection::<Document>("events");
    let unique = IndexOptions::builder().unique(true).build();
    raw.create_index(
        IndexModel::builder()
            .keys(doc! { "eventId": 1 })
            .options(unique)
            .build(),
    )
    .await?;
    raw.create_index(
        IndexModel::builder()
            .keys(doc! { "site": 1, "ts": 1 })
            .build(),
    )
    .await?;
    let store = MongoStore::connect(
        &with_db(&a.uri, &format!("bench_store_{run}")),
        MongoConfig::default(),
    )
    .await?;
    let docs: Vec<Document> = live.iter().map(raw_doc).collect::<Res<_>>()?;
    let round = live.len().div_ceil(a.rounds.max(1)).max(1);
    let (mut raw_time, mut store_time) = (Duration::ZERO, Duration::ZERO);
    for (events, docs) in live.chunks(round).zip(docs.chunks(round)) {
        let t = Instant::now();
        for chunk in docs.chunks(a.batch) {
            raw.insert_many(chunk)
                .ordered(false)
                .write_concern(durable.clone())
                .await?;
        }
        raw_time += t.elapsed();
        let t = Instant::now();
        for chunk in events.chunks(a.batch) {
            store.insert_batch(chunk.to_vec()).await?;
        }
        store_time += t.elapsed();
    }
    // What the compactor had not folded yet when the last insert returned.
    let pending = store.pending_deltas().await?;
    let t = Instant::now();
    store.compact_now().await?;
    let fold_time = t.elapsed();
    let raw_rate = rate(docs.len(), raw_time);
    let store_rate = rate(live.len(), store_time);
    let total_rate = rate(live.len(), store_time + fold_time);
    println!("   raw insert_many (unique eventId, {{site,ts}}, w:majority j:true): {raw_rate:>8.0} events/s");
    println!("   MongoStore::insert_batch (+ rollup deltas, exactly once; compactor running): {store_rate:>8.0} events/s");
    println!(
        "   + folding the {pending} deltas left at the end ({:.0} ms): {total_rate:>8.0} events/s",
        ms(fold_time)
    );
    let t = Instant::now();
    for chunk in live.chunks(a.batch) {
        store.insert_batch(chunk.to_vec()).await?;
    }
    let redeliver_rate = rate(live.len(), t.elapsed());
    println!("   MongoStore::insert_batch, the same events redelivered (all dups): {redeliver_rate:>8.0} events/s");
    println!(
        "   ratio store / raw insert_many: {:.2} (including the final fold: {:.2}; target >= 0.70)",
        store_rate / raw_rate,
        total_rate / raw_rate
    );
    println!("   RESULT store_insert_ratio {:.3}", total_rate / raw_rate);
    println!("   RESULT store_raw_events_per_s {raw_rate:.0}");
    println!("   RESULT store_events_per_s {total_rate:.0}");
    drop(store);
    raw_db.drop().await?;
    client
        .database(&format!("bench_store_{run}"))
        .drop()
        .await?;
    if a.query_events == 0 {
        return Ok(());
    }

    // ---- 2. last 30 days, top pages -------------------------------------------------------
    let now = now_ms();
    let from = now - 30 * 86_400_000;
    let big = events(a.query_events, from, now, &["big.example"], "q", 2);
    let q = BreakdownQuery {
        range: RangeQuery {
            site: "big.example".into(),
            from,
            to: now,
        },
        dimension: Dimension::Page,
        limit: 10,
    };
    println!();
    println!(
        "2. \"last 30 days, top pages\" over {} events (1 site, 300 pages)",
        big.len()
    );

    let qdb_name = format!("bench_query_{run}");
    if a.mongo_query {
        // Loading batches are large and the server is slow: give each attempt time.
        let loading = MongoConfig {
            attempt_timeout_ms: 600_000,
            pending_grace_ms: 1_200_000,
            ..MongoConfig::default()
        };
        let store = MongoStore::connect(&with_db(&a.uri, &qdb_name), loading).await?;
        let t = Instant::now();
        for chunk in big.chunks(a.load_batch) {
            store.insert_batch(chunk.to_vec()).await?;
        }
        println!(
            "   MongoDB: loaded through the store in {:.0} s ({:.0} events/s, batches of {})",
            t.elapsed().as_secs_f64(),
            rate(big.len(), t.elapsed()),
            a.load_batch
        );
        let (p50, max, answer) = time_breakdown(&store, &q, 10).await?;
        println!(
            "   MongoStore breakdown (rollups + indexed edges): p50 {p50:.1} ms, max {max:.1} ms"
        );
        let events = client.database(&qdb_name).collection::<Document>("events");
        let pipeline = vec![
            doc! { "$match": {
                "site": "big.example",
                "name": "page_view",
                "ts": { "$gte": mongodb::bson::DateTime::from_millis(from), "$lt": mongodb::bson::DateTime::from_millis(now) },
            } },
            doc! { "$group": { "_id": "$path", "n": { "$sum": 1 } } },
            doc! { "$sort": { "n": -1, "_id": 1 } },
            doc! { "$limit": 10 },
        ];
        let t = Instant::now();
        let mut cursor = events.aggregate(pipeline).await?;
        let mut scanned = Vec::new();
        while cursor.advance().await? {
            let d: Document = cursor.deserialize_current()?;
            let n = d.get_i32("n").map(i64::from).or_else(|_| d.get_i64("n"))?;
            scanned.push((d.get_str("_id")?.to_string(), n as u64));
        }
        let scan_ms = ms(t.elapsed());
        println!("   aggregation scan of the raw events ($match/$group/$sort): {scan_ms:.1} ms");
        println!("   answers agree: {}", scanned == top(&answer));
        println!(
            "   ratio scan / rollups: {:.0}x faster with rollups",
            scan_ms / p50.max(1e-6)
        );
        drop(store);
        client.database(&qdb_name).drop().await?;
    }

    if a.sqlite {
        let dir = tempfile::tempdir()?;
        let store = SqliteStore::open(SqliteConfig::new(dir.path()))?;
        let t = Instant::now();
        for chunk in big.chunks(a.load_batch) {
            store.insert_batch(chunk.to_vec()).await?;
        }
        println!(
            "   SQLite: loaded through the store in {:.0} s ({:.0} events/s)",
            t.elapsed().as_secs_f64(),
            rate(big.len(), t.elapsed())
        );
        let (p50, max, answer) = time_breakdown(&store, &q, 10).await?;
        println!(
            "   SqliteStore breakdown (rollups + indexed edges): p50 {p50:.1} ms, max {max:.1} ms"
        );
        let conn = rusqlite::Connection::open_with_flags(
            store.path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let t = Instant::now();
        let mut stmt = conn.prepare(
            "SELECT path, COUNT(*) AS n FROM events
             WHERE site = ?1 AND ts >= ?2 AND ts < ?3 AND name = 'page_view'
             GROUP BY path ORDER BY n DESC, path LIMIT 10",
        )?;
        let scanned: Vec<(String, u64)> = stmt
            .query_map(rusqlite::params!["big.example", from, now], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
            })?
            .collect::<Result<_, _>>()?;
        let scan_ms = ms(t.elapsed());
        println!("   SQL GROUP BY over the events table ({{site, ts}} index): {scan_ms:.1} ms");
        println!("   answers agree: {}", scanned == top(&answer));
        println!(
            "   ratio scan / rollups: {:.0}x faster with rollups",
            scan_ms / p50.max(1e-6)
        );
    }
    Ok(())
}
