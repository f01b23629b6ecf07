//! `footfall standalone`: collector + embedded SQLite store + stats API + live gateway +
//! tracker, demo and dashboard files, on one address.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use collector::salt::SaltSource;
use collector::sites::SitePolicy;
use collector::{Collector, Sink};
use footfall_http::{Mount, Router, StaticFiles};
use processor::live::{refresh_visits, Gateway, GatewayLimits, LiveHub, LiveStore, VISIT_REFRESH};
use processor::sites::{SiteRegistry, SitesApi};
use processor::store::SqliteConfig;
use processor::{AdminToken, ProcessorHttp, SqliteStore, StatsApi, Store, StoreError};

use crate::cli::StandaloneOpts;
use crate::glue::{RegistrySites, StoreSalts, StoreSink};
use crate::{assets, shutdown};

/// How soon a site added with `footfall sites add` from another shell is accepted.
const REGISTRY_REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

pub async fn run(opts: StandaloneOpts) -> anyhow::Result<()> {
    let files = assets::load(opts.ingest.assets_dir.as_deref())?;
    let mut store_config = SqliteConfig::new(&opts.data_dir);
    store_config.queue_capacity = opts.store_queue;
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

    let (token, generated) = match opts.admin_token.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => (AdminToken::new(t), false),
        _ => (AdminToken::generate(), true),
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
    let sink: Arc<dyn Sink> = Arc::new(StoreSink(live_store.clone()));
    let salts: Arc<dyn SaltSource> = Arc::new(StoreSalts(store.clone()));
    let stats = StatsApi::new(live_store, token.clone());
    // Share links watch the live view of their own site, as they read its stats.
    let gateway = Gateway::new(live.clone(), token.clone(), GatewayLimits::default())
        .with_credentials(stats.credentials().clone());
    let http = ProcessorHttp::new(stats, gateway)
        .with_sites(SitesApi::new(registry.clone(), token.clone()));
    let mut config = opts.ingest.collector_config()?;
    if !opts.ingest.accept_any_site {
        config.sites = SitePolicy::Known(Arc::new(RegistrySites(registry)));
    }
    let collector = Collector::new(config, sink, salts);
    let statics = assets::service(
        files.clone(),
        vec![Mount::tracker(), Mount::demo(), Mount::dashboard()],
    );
    let owner = statics.clone();
    let router = Router::new()
        .route(Collector::owns, collector.clone())
        .route(ProcessorHttp::owns, http)
        .route(move |p| owner.owns(p), statics);

    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    let addr = listener.local_addr().context("listener has no address")?;
    print_banner(&addr.to_string(), &token, generated, &files, store.path());
    tracing::info!(%addr, data = %store.path().display(), "footfall standalone started");

    footfall_http::serve(
        listener,
        Arc::new(router),
        opts.ingest.server_limits(),
        shutdown::signal(),
    )
    .await
    .context("server failed")?;
    // Live connections are not HTTP requests the server drains: tell them we are going.
    live.close();

    if let Err(e) = collector.flush().await {
        tracing::warn!(error = %e, "flush on shutdown failed");
    }
    tracing::info!("stopped");
    Ok(())
}

/// The start-up banner goes to stdout (logs go to stderr) so it stays readable.
fn print_banner(addr: &str, token: &AdminToken, generated: bool, files: &StaticFiles, db: &Path) {
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
    if generated {
        println!(
            "  admin token {}   (generated; set FOOTFALL_ADMIN_TOKEN to keep one)",
            token.expose()
        );
    } else {
        println!("  admin token (from --admin-token / FOOTFALL_ADMIN_TOKEN)");
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
