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
//! [--query-events N (0: insert only)] [--load-batch N] [--skip-sqlite] [--skip-mongo-query] [--skip-insert] [--sqlite-dir DIR]`
//! (`--sqlite-dir` keeps the SQLite data set between runs and reuses it; the data set is the
//! same for the same `--query-events` only if the folder was made with it). `bench/store.sh` starts a server and runs it.
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
    insert: bool,
    /// Keep the SQLite data set here between runs (loaded once; reused when present).
    sqlite_dir: Option<std::path::PathBuf>,
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
        insert: true,
        sqlite_dir: None,
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
            "--skip-insert" => a.insert = false,
            "--sqlite-dir" => {
                a.sqlite_dir = Some(it.next().ok_or("--sqlite-dir needs a value")?.into())
            }
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

/// About `n` events between `from` and `to`, sorted by time, made visit by visit as a
/// tracker sends them: `session_start`, one or more page views (1 + geometric, mean about
/// 2.2, so about 45 % of visits bounce) a minute or so apart, some clicks, and a
/// `session_end` — about 5 events per visit. A visit keeps one source, country, device,
/// browser and OS; visitors come back (the pool is smaller than the number of visits); page
/// popularity is skewed (a few pages get most views, as on real sites).
fn events(n: usize, from: i64, to: i64, sites: &[&str], tag: &str, seed: u64) -> Vec<Event> {
    let mut rng = Lcg(seed);
    let refs = [
        "news.ycombinator.com",
        "google.com",
        "t.co",
        "duckduckgo.com",
    ];
    let browsers = ["Firefox", "Chrome", "Safari", "Edge"];
    let oses = ["Linux", "Windows 10", "iOS", "Mac OS X", "Android"];
    let countries = ["IN", "US", "DE", "FR", "BR", "JP"];
    let visits = (n / 5).max(1) as u64;
    let visitors = (visits * 7 / 10).max(1);
    let span = (to - from).max(1) as u64;
    let mut out: Vec<Event> = Vec::with_capacity(n + 16);
    let mut visit = 0u64;
    while out.len() < n {
        visit += 1;
        let pick = |r: &mut Lcg, xs: &[&str]| xs[(r.next() % xs.len() as u64) as usize].to_string();
        let v = rng.next() % visitors;
        let site = pick(&mut rng, sites);
        let country = pick(&mut rng, &countries);
        let device = [Device::Desktop, Device::Mobile, Device::Tablet][(rng.next() % 3) as usize];
        let browser = pick(&mut rng, &browsers);
        let os = pick(&mut rng, &oses);
        let referrer = rng.next().is_multiple_of(3).then(|| pick(&mut rng, &refs));
        let utm = rng
            .next()
            .is_multiple_of(10)
            .then(|| "newsletter".to_string());
        let session = format!("session-{visit:08x}");
        let mut ts = from + (rng.next() * 7919 % span) as i64;
        let mut seq = 0;
        let mut push = |name: &str, ts: i64, path: &str, out: &mut Vec<Event>| {
            let mut e = EventBuilder::new(&site, name, ts)
                .id(format!("{tag}-{visit:09}-{seq:03}"))
                .received_at(ts + 40)
                .visitor(format!("{v:016x}"))
                .session(session.clone())
                .path(path)
                .screen("1920x1080")
                .lang("en-US")
                .country(country.clone())
                .device(device)
                .browser(browser.clone())
                .os(os.clone())
                .build();
            e.referrer_host = referrer.clone();
            e.utm_source = utm.clone();
            seq += 1;
            out.push(e);
        };
        let page = |r: &mut Lcg| format!("/docs/page-{}", (300.0 * r.unit().powi(3)) as usize);
        let entry = page(&mut rng);
        push("session_start", ts, &entry, &mut out);
        let mut path = entry;
        loop {
            push("page_view", ts, &path, &mut out);
            if rng.next() % 10 < 3 {
                push("click", ts + 5_000, &path, &mut out);
            }
            // 45 % leave after each page.
            if rng.unit() < 0.45 {
                break;
            }
            ts += 10_000 + (rng.unit() * 110_000.0) as i64;
            path = page(&mut rng);
        }
        push("session_end", ts + 10_000, &path, &mut out);
    }
    out.truncate(n);
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

/// p50 and max of `runs` timed calls after one warm-up.
async fn time_it<F, Fut, T>(runs: usize, mut f: F) -> Res<(f64, f64)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, processor::StoreError>>,
{
    f().await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await?;
        times.push(ms(t.elapsed()));
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[times.len() - 1]))
}

/// Issue 13's check: 30-day summary (with visit metrics) and breakdown, unfiltered (rollups +
/// visits) and filtered (fact table), printed against the unfiltered breakdown of this run.
async fn time_filtered(store: &dyn Store, q: &BreakdownQuery, label: &str) -> Res<()> {
    use protocol::stats::Filter;
    let filters = vec![
        Filter::is(Dimension::Country, "DE"),
        Filter::is_not(Dimension::Device, "mobile"),
    ];
    let filtered = RangeQuery {
        filters: filters.clone(),
        ..q.range.clone()
    };
    let (base_p50, _) = time_it(5, || processor::history::breakdown(store, q.clone())).await?;
    if std::env::var_os("BENCH_PARTS").is_some() {
        let scope = processor::visit::Scope {
            site: q.range.site.clone(),
            from: q.range.from,
            to: q.range.to,
            filters: vec![],
        };
        let (v, _) = time_it(5, || {
            store.visit_stats(scope.clone(), processor::visit::Grouping::Total)
        })
        .await?;
        let cover = processor::rollup::cover(q.range.from, q.range.to);
        let (r, _) = time_it(5, || {
            store.read_rollups(q.range.site.clone(), cover.runs.clone(), true)
        })
        .await?;
        let (r2, _) = time_it(5, || {
            store.read_rollups(q.range.site.clone(), cover.runs.clone(), false)
        })
        .await?;
        println!("   parts: visit_stats total {v:.1} ms, read_rollups with sketches {r:.1} ms, without {r2:.1} ms");
    }
    let (s_p50, s_max) = time_it(5, || processor::history::summary(store, q.range.clone())).await?;
    let (fs_p50, fs_max) =
        time_it(5, || processor::history::summary(store, filtered.clone())).await?;
    let fq = BreakdownQuery {
        range: filtered.clone(),
        ..q.clone()
    };
    let (fb_p50, fb_max) = time_it(5, || processor::history::breakdown(store, fq.clone())).await?;
    let wild = BreakdownQuery {
        range: RangeQuery {
            filters: vec![Filter::is(Dimension::Page, "/docs/page-1*")],
            ..q.range.clone()
        },
        dimension: Dimension::Referrer.into(),
        limit: 10,
    };
    let (wb_p50, wb_max) =
        time_it(5, || processor::history::breakdown(store, wild.clone())).await?;
    println!(
        "   {label} 30-day summary with visits, unfiltered: p50 {s_p50:.1} ms, max {s_max:.1} ms"
    );
    println!("   {label} 30-day summary, filter country:DE + device!:mobile: p50 {fs_p50:.1} ms, max {fs_max:.1} ms");
    println!("   {label} 30-day top pages, same filters: p50 {fb_p50:.1} ms, max {fb_max:.1} ms");
    println!("   {label} 30-day top referrers, filter page:/docs/page-1*: p50 {wb_p50:.1} ms, max {wb_max:.1} ms");
    println!(
        "   ratio filtered breakdown / unfiltered breakdown (rollups, {base_p50:.1} ms): {:.1}x",
        fb_p50 / base_p50.max(1e-6)
    );
    let key = label.to_ascii_lowercase();
    println!("   RESULT {key}_breakdown_p50_ms {base_p50:.1}");
    println!("   RESULT {key}_summary_p50_ms {s_p50:.1}");
    println!("   RESULT {key}_filtered_summary_p50_ms {fs_p50:.1}");
    println!("   RESULT {key}_filtered_top_pages_p50_ms {fb_p50:.1}");
    println!("   RESULT {key}_wildcard_referrers_p50_ms {wb_p50:.1}");
    Ok(())
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

    // ---- 1. insert throughput -------------------------------------------------------------
    println!("store-bench: MongoDB-protocol server at {}", a.uri);
    if a.insert {
        insert_throughput(&a, &client, &run).await?;
    }
    if a.query_events == 0 {
        return Ok(());
    }
    queries(&a, &client, &run).await
}

async fn insert_throughput(a: &Args, client: &Client, run: &str) -> Res<()> {
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
            store.insert_batch(chunk.to_vec().into()).await?;
        }
        store_time += t.elapsed();
    }
    // What the compactor had not folded yet when the last insert returned.
    let pending = store.pending_deltas().await?;
    let t = Instant::now();
    // A round of the store's own compactor may be folding the same deltas: `compact_now`
    // tries a round that lost that race again.
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
        store.insert_batch(chunk.to_vec().into()).await?;
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
    Ok(())
}

async fn queries(a: &Args, client: &Client, run: &str) -> Res<()> {
    // ---- 2. last 30 days, top pages -------------------------------------------------------
    // A kept SQLite data set was made for the "now" written beside it.
    let anchor = a.sqlite_dir.as_ref().map(|d| d.join("bench-now.txt"));
    let now = anchor
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(now_ms);
    if let Some(f) = &anchor {
        std::fs::create_dir_all(f.parent().unwrap_or(std::path::Path::new(".")))?;
        std::fs::write(f, now.to_string())?;
    }
    let from = now - 30 * 86_400_000;
    let big = events(a.query_events, from, now, &["big.example"], "q", 2);
    let q = BreakdownQuery {
        range: RangeQuery {
            site: "big.example".into(),
            from,
            to: now,
            ..Default::default()
        },
        dimension: Dimension::Page.into(),
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
            store.insert_batch(chunk.to_vec().into()).await?;
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
        time_filtered(&store, &q, "MongoStore").await?;
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
        let temp = tempfile::tempdir()?;
        let dir = a
            .sqlite_dir
            .clone()
            .unwrap_or_else(|| temp.path().to_path_buf());
        let reuse = dir.join("footfall.db").is_file();
        let store = SqliteStore::open(SqliteConfig::new(&dir))?;
        if reuse {
            println!("   SQLite: reusing the data set in {}", dir.display());
        } else {
            let t = Instant::now();
            for chunk in big.chunks(a.load_batch) {
                store.insert_batch(chunk.to_vec().into()).await?;
            }
            println!(
                "   SQLite: loaded through the store in {:.0} s ({:.0} events/s)",
                t.elapsed().as_secs_f64(),
                rate(big.len(), t.elapsed())
            );
        }
        let (p50, max, answer) = time_breakdown(&store, &q, 10).await?;
        println!(
            "   SqliteStore breakdown (rollups + indexed edges): p50 {p50:.1} ms, max {max:.1} ms"
        );
        time_filtered(&store, &q, "SqliteStore").await?;
        let conn = rusqlite::Connection::open_with_flags(
            store.path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let t = Instant::now();
        let mut stmt = conn.prepare(
            "SELECT d.value, COUNT(*) AS n FROM facts f JOIN dict d ON d.id = f.path
             WHERE f.site = (SELECT id FROM dict WHERE value = ?1) AND f.ts >= ?2 AND f.ts < ?3
               AND f.name = (SELECT id FROM dict WHERE value = 'page_view')
             GROUP BY f.path ORDER BY n DESC, d.value LIMIT 10",
        )?;
        let scanned: Vec<(String, u64)> = stmt
            .query_map(rusqlite::params!["big.example", from, now], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
            })?
            .collect::<Result<_, _>>()?;
        let scan_ms = ms(t.elapsed());
        println!(
            "   SQL GROUP BY over every fact of the range ({{site, ts}} order): {scan_ms:.1} ms"
        );
        println!("   RESULT sqlitestore_scan_top_pages_ms {scan_ms:.1}");
        println!("   answers agree: {}", scanned == top(&answer));
        println!(
            "   ratio scan / rollups: {:.0}x faster with rollups",
            scan_ms / p50.max(1e-6)
        );
    }
    Ok(())
}
