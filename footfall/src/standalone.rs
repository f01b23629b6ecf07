//! `footfall standalone`: collector + embedded journal + SQLite store + stats API + live
//! gateway + tracker, demo and dashboard files, on one address.
//!
//! Accepted events are appended to the journal (synced before the 2xx); the same pipeline a
//! processor runs over Kafka moves them from the journal into the store, and the events that
//! are new into live metrics, right behind.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use collector::salt::SaltSource;
use collector::sites::SitePolicy;
use collector::{Collector, Sink};
use footfall_http::{MetricsRegistry, Mount, Router, StaticFiles};
use journal::{Journal, JournalConfig};
use processor::live::{refresh_visits, Gateway, GatewayLimits, LiveHub, LiveStore, VISIT_REFRESH};
use processor::pipeline::{self, PipelineConfig, PipelineMetrics};
use processor::priority::{Background, Share, ShareControl};
use processor::sites::{SiteRegistry, SitesApi};
use processor::source::JournalSource;
use processor::store::SqliteConfig;
use processor::{AdminToken, ProcessorHttp, SqliteStore, StatsApi, Store, StoreError};

use crate::cli::StandaloneOpts;
use crate::glue::{JournalFreshness, JournalSink, RegistrySites, StoreSalts};
use crate::{assets, shutdown};

/// How soon a site added with `footfall sites add` from another shell is accepted.
const REGISTRY_REFRESH: std::time::Duration = std::time::Duration::from_secs(2);
/// The journal's folder inside the data folder.
const JOURNAL_DIR: &str = "journal";
/// The gauge that says whether the store indexes in idle time only (1) or takes a share (0).
pub const STORE_IDLE: &str = "footfall_store_idle_only";
/// How often the journal's backlog is sampled (its gauge, and the store's CPU share).
const BACKLOG_SAMPLE: std::time::Duration = std::time::Duration::from_millis(250);
/// How long a graceful stop waits for the store to take what the journal still holds (the
/// rest is taken on the next start).
const DRAIN_ON_STOP: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn run(opts: StandaloneOpts) -> anyhow::Result<()> {
    let files = assets::load(opts.ingest.assets_dir.as_deref())?;
    // Indexing: its input is durable in the journal already, so under a burst requests go
    // first (see `processor::priority`).
    let background = Background::new();
    let mut store_config = SqliteConfig::new(&opts.data_dir);
    store_config.background = Some(background.clone());
    store_config.max_size_bytes =
        (opts.store_max_mb > 0).then(|| opts.store_max_mb.saturating_mul(1024 * 1024));
    let store = match SqliteStore::open(store_config) {
        Ok(store) => Arc::new(store),
        Err(StoreError::Locked { path }) => anyhow::bail!(
            "the data folder {path} is in use by another footfall process; stop it or pass \
             a different --data-dir"
        ),
        Err(e) => return Err(e).context("cannot open the embedded store"),
    };

    // Opened after the store, whose lock keeps a second process out of the folder.
    let journal_dir = opts.data_dir.join(JOURNAL_DIR);
    let mut journal_config = JournalConfig::new(&journal_dir);
    journal_config.max_backlog_bytes = opts.journal_max_mb.saturating_mul(1024 * 1024).max(1);
    let journal_capacity = journal_config.max_backlog_bytes;
    let (journal, journal_reader) =
        journal::open(journal_config).context("cannot open the journal")?;

    let token = match opts.admin_token.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(t) => TokenOrigin::Configured(
            AdminToken::configured(t).context("--admin-token / FOOTFALL_ADMIN_TOKEN")?,
        ),
        None => token_file(&opts.data_dir)?,
    };

    let registry = SiteRegistry::open(store.clone())
        .await
        .context("cannot read the site registry")?;
    tokio::spawn(
        registry
            .clone()
            .run_refresh(REGISTRY_REFRESH, std::future::pending()),
    );

    let live = LiveHub::default();
    tokio::spawn(live.clone().run_publisher());
    // Today's visit figures of watched sites, from the store every few seconds.
    tokio::spawn(refresh_visits(live.clone(), store.clone(), VISIT_REFRESH));
    // Everything stored through this also feeds live metrics (only events that were new).
    let live_store: Arc<dyn Store> =
        Arc::new(LiveStore::new(store.clone(), Arc::new(live.clone())));
    let sink: Arc<dyn Sink> = Arc::new(JournalSink {
        journal: journal.clone(),
        store: live_store.clone(),
    });
    let salts: Arc<dyn SaltSource> = Arc::new(StoreSalts(store.clone()));
    // An answer holds every event acknowledged before the question.
    let stats = StatsApi::new(live_store.clone(), token.token().clone())
        .with_freshness(Arc::new(JournalFreshness(journal.clone())));
    // Share links watch the live view of their own site, as they read its stats.
    let gateway = Gateway::new(
        live.clone(),
        token.token().clone(),
        GatewayLimits::default(),
    )
    .with_credentials(stats.credentials().clone())
    .with_allowed_origins(opts.ws_allowed_origins.clone());
    let http = ProcessorHttp::new(stats, gateway)
        .with_sites(SitesApi::new(registry.clone(), token.token().clone()))
        .with_trusted_proxies(opts.ingest.server.trusted_proxies.clone());
    let mut config = opts.ingest.collector_config()?;
    if !opts.ingest.accept_any_site {
        config.sites = SitePolicy::Known(Arc::new(RegistrySites(registry)));
    }
    let collector = Collector::new(config, sink, salts);
    http.register_metrics(collector.metrics().registry());

    let indexer = Indexer::start(
        JournalSource::new(
            journal.clone(),
            journal_reader,
            journal_dir.join("dead-letters.ndjson"),
        )
        .with_background(background.clone()),
        live_store.clone(),
        collector.metrics().registry(),
        background.clone(),
    )?;
    spawn_backlog_watch(
        journal.clone(),
        journal_capacity,
        background,
        collector.metrics().registry(),
    );
    let statics = assets::service(
        files.clone(),
        vec![Mount::tracker(), Mount::demo(), Mount::dashboard()],
    );
    let owner = statics.clone();
    let router = Router::new()
        .route(Collector::owns, collector.clone())
        .route(ProcessorHttp::owns, http)
        .route(move |p| owner.owns(p), statics);

    let listener = footfall_http::server::bind(opts.listen)
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    let addr = listener.local_addr().context("listener has no address")?;
    print_banner(&addr.to_string(), &token, &files, store.path());
    tracing::info!(%addr, data = %store.path().display(), "footfall standalone started");

    footfall_http::serve(
        listener,
        Arc::new(router),
        opts.ingest.server.limits(),
        shutdown::signal(),
    )
    .await
    .context("server failed")?;
    if let Err(e) = collector.flush().await {
        tracing::warn!(error = %e, "flush on shutdown failed");
    }
    let drained =
        tokio::time::timeout(DRAIN_ON_STOP, journal.wait_committed(journal.durable_end())).await;
    if drained.is_err() {
        tracing::info!(
            bytes = journal.backlog(),
            "the store takes the rest of the journal on the next start"
        );
    }
    indexer.stop().await;
    // Live connections are not HTTP requests the server drains: tell them we are going.
    live.close();
    tracing::info!("stopped");
    Ok(())
}

/// The pipeline journal → store, as a processor runs Kafka → store (commit after store,
/// retries, dead letters; the store's event-id uniqueness absorbs what a crash makes it read
/// twice), on a thread of its own at the store writer's background share: decoding, live
/// deltas and documents are indexing work too, which must not take the CPU from requests in a
/// burst.
struct Indexer {
    stop: tokio::sync::watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
}

impl Indexer {
    fn start(
        source: JournalSource,
        store: Arc<dyn Store>,
        registry: &MetricsRegistry,
        background: Background,
    ) -> anyhow::Result<Indexer> {
        let metrics = PipelineMetrics::in_registry(registry.clone());
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let on_start = background.clone();
        let on_unpark = background.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            // The share is taken again each time the thread wakes for more work; the
            // runtime's blocking threads (journal reads) take it with each task.
            .on_thread_start(move || on_start.apply())
            .on_thread_unpark(move || on_unpark.apply())
            .build()
            .context("cannot start the pipeline's runtime")?;
        let config = PipelineConfig {
            // Records (one request each); a batch also stops at 512 KiB of them.
            max_batch: 1000,
            // The journal fills while the store writes; waiting would only add latency.
            linger: std::time::Duration::ZERO,
            ..PipelineConfig::default()
        };
        let thread = std::thread::Builder::new()
            .name("footfall-pipeline".into())
            .spawn(move || {
                background.apply();
                let stopped = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                runtime.block_on(pipeline::run(&source, store, &config, &metrics, stopped));
            })
            .context("cannot start the pipeline thread")?;
        Ok(Indexer { stop, thread })
    }

    /// Stops after the batch in hand is stored and committed.
    async fn stop(self) {
        let _ = self.stop.send(true);
        let thread = self.thread;
        if !matches!(
            tokio::task::spawn_blocking(move || thread.join()).await,
            Ok(Ok(()))
        ) {
            tracing::error!("the pipeline thread failed");
        }
    }
}

/// `footfall_journal_backlog_bytes` and `footfall_store_idle_only` on `/metrics`: how far the
/// store is behind the collector, and the CPU share that gives the store (idle time only in a
/// burst of requests until the journal is half full; see `processor::priority`).
fn spawn_backlog_watch(
    journal: Journal,
    capacity: u64,
    background: Background,
    registry: &MetricsRegistry,
) {
    let backlog = registry.gauge(
        processor::source::journal::BACKLOG,
        "Bytes acknowledged to clients that the store has not taken yet",
    );
    let idle = registry.gauge(
        STORE_IDLE,
        "1 while the store indexes in idle CPU time only (a burst of requests), 0 while it \
         takes a low share (no burst, the journal half full, or no CAP_SYS_NICE)",
    );
    tokio::spawn(async move {
        let mut every = tokio::time::interval(BACKLOG_SAMPLE);
        let mut end = journal.durable_end();
        let mut control = ShareControl::default();
        loop {
            every.tick().await;
            let bytes = journal.backlog();
            backlog.set(i64::try_from(bytes).unwrap_or(i64::MAX));
            let appended = journal.durable_end().saturating_sub(end);
            end += appended;
            background.set_idle(control.next(bytes, capacity, appended) == Share::Idle);
            idle.set(i64::from(background.share() == Share::Idle));
        }
    });
}

/// Where the admin token came from.
enum TokenOrigin {
    /// `--admin-token` / `FOOTFALL_ADMIN_TOKEN`.
    Configured(AdminToken),
    /// The token file in the data folder (written now, or on an earlier start).
    File { token: AdminToken, path: PathBuf },
}

impl TokenOrigin {
    fn token(&self) -> &AdminToken {
        match self {
            TokenOrigin::Configured(token) | TokenOrigin::File { token, .. } => token,
        }
    }
}

/// The file in the data folder that keeps a generated admin token.
const TOKEN_FILE: &str = "admin-token";

/// The token of a standalone server started without one: read from the data folder's token
/// file, or generated into it (readable by its owner only). A file, not the log: container
/// logs are read by many and kept long, and the same token survives restarts.
fn token_file(data_dir: &Path) -> anyhow::Result<TokenOrigin> {
    let path = data_dir.join(TOKEN_FILE);
    let token = match std::fs::read_to_string(&path) {
        Ok(text) => AdminToken::configured(&text).with_context(|| {
            format!(
                "{}: delete it to have a new token generated",
                path.display()
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = AdminToken::generate();
            write_private(&path, token.expose())
                .with_context(|| format!("cannot write the admin token to {}", path.display()))?;
            token
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the admin token {}", path.display()))
        }
    };
    Ok(TokenOrigin::File { token, path })
}

/// Creates `path` with `contents`, readable and writable by its owner only (0600 on Unix).
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// The start-up banner goes to stdout (logs go to stderr) so it stays readable.
fn print_banner(addr: &str, token: &TokenOrigin, files: &StaticFiles, db: &Path) {
    let base = format!("http://{addr}");
    let built = |rel: &str| files.contains(rel);
    let hint = |ok: bool| {
        if ok {
            ""
        } else {
            "   (not in this build: run `cargo xtask dist`, then rebuild, or pass --assets-dir)"
        }
    };
    println!();
    println!("  Footfall standalone is running");
    println!();
    println!("  ingest      {base}/api/batch   {base}/api/track");
    println!(
        "  tracker     {base}/footfall.js{}",
        hint(built("tracker/footfall.js"))
    );
    println!(
        "  demo        {base}/demo/{}",
        hint(built("demo/index.html"))
    );
    println!(
        "  dashboard   {base}/dashboard/{}",
        hint(built("dashboard/index.html"))
    );
    println!("  stats API   {base}/api/stats/summary?site=default");
    println!("  live feed   ws://{addr}/ws?site=default   (Bearer token, or a ticket from POST /api/ws-ticket)");
    println!("  health      {base}/api/health   {base}/metrics");
    println!("  data        {}", db.display());
    match token {
        // Printed only to a person at a terminal: stdout that is a file or a pipe is a log,
        // and logs are read by many and kept long.
        TokenOrigin::File { token, path } if std::io::stdout().is_terminal() => println!(
            "  admin token {}   (in {}; or set FOOTFALL_ADMIN_TOKEN)",
            token.expose(),
            path.display()
        ),
        TokenOrigin::File { path, .. } => {
            println!(
                "  admin token in {}   (or set FOOTFALL_ADMIN_TOKEN)",
                path.display()
            )
        }
        TokenOrigin::Configured(_) => {
            println!("  admin token (from --admin-token / FOOTFALL_ADMIN_TOKEN)")
        }
    }
    println!();
    println!("  Try it:");
    println!(
        "    curl -s {base}/api/track -H 'Content-Type: application/json' \\\n      -d '{{\"event\":\"page_view\",\"page\":\"/home\",\"sessionId\":\"s1\",\"userAgent\":\"Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0\",\"timezone\":\"Asia/Kolkata\"}}'"
    );
    println!(
        "    curl -s '{base}/api/stats/summary?site=default' -H 'Authorization: Bearer <admin token>'"
    );
    println!();
}
