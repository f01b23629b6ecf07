//! `footfall collector` and `footfall processor`: the distributed deployment.
//!
//! Both start by making sure the Kafka topics exist (`footfall_kafka::ensure_topics`), which
//! also fails fast with a clear message when the brokers are unreachable or a topic setting
//! is wrong. The collector produces to `footfall.events` through the Kafka sink and takes its
//! daily visitor salt from `footfall.salts`; the processor runs the pipeline (Kafka source →
//! store) and serves the stats API, the live feed, the dashboard, health and metrics on its
//! own address.
//!
//! Only built with the `kafka` feature: both need Kafka.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use collector::kafka::{KafkaSalts, KafkaSink, KafkaSinkConfig, KafkaSites};
use collector::sites::SitePolicy;
use collector::Collector;
use footfall_http::{Mount, Router};
use footfall_kafka::{ensure_topics, TopicSpec};
use processor::live::{
    refresh_visits, run_subscriber, Gateway, GatewayLimits, LiveHub, LiveStore, LocalSpentTickets,
    MetricsPublisher, SpentTickets, VISIT_REFRESH,
};
use processor::pipeline::{self, PipelineConfig, PipelineMetrics};
use processor::sites::{SiteRegistry, SitesApi, SitesTopic};
use processor::source::{KafkaSource, KafkaSourceConfig};
use processor::store::SqliteConfig;
use processor::{
    AdminToken, ProcessorHttp, ProcessorService, SqliteStore, StatsApi, Store, StoreError,
};
use tokio::sync::watch;

use crate::cli::{CollectorOpts, KafkaOpts, ProcessorOpts};
use crate::{assets, shutdown};

/// The topics of a deployment, as `opts` says to create them.
fn topic_specs(opts: &KafkaOpts) -> Vec<TopicSpec> {
    let rf = opts.replication_factor;
    vec![
        TopicSpec::new(&opts.events_topic, opts.partitions, rf)
            .retention_hours(opts.retention_hours),
        // Dead letters are rare and read by people: one partition, the same retention.
        TopicSpec::new(&opts.dlq_topic, 1, rf).retention_hours(opts.retention_hours),
        // Metric deltas are only useful live: one ordered stream, a day of history.
        TopicSpec::new(&opts.metrics_topic, 1, rf).retention_hours(24),
        KafkaSalts::topic_spec(&opts.salts_topic, rf),
        KafkaSites::topic_spec(&opts.sites_topic, rf),
    ]
}

async fn bootstrap(opts: &KafkaOpts) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(opts.kafka_startup_timeout_secs.max(1));
    ensure_topics(&opts.brokers, &topic_specs(opts), timeout)
        .await
        .context("Kafka topic bootstrap failed")
}

pub async fn collector(opts: CollectorOpts) -> anyhow::Result<()> {
    let files = assets::load(opts.ingest.assets_dir.as_deref())?;
    bootstrap(&opts.kafka).await?;
    let mut config = opts.ingest.collector_config()?;
    // Collectors have no store: the registry is the sites topic processors write. Kept for
    // the whole run (following stops when it is dropped).
    let _sites = if opts.ingest.accept_any_site {
        None
    } else {
        let sites = KafkaSites::start(&opts.kafka.brokers, &opts.kafka.sites_topic)
            .context("cannot follow the sites topic")?;
        // Read the registry before taking events (they would get 503 until then).
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(opts.kafka.kafka_startup_timeout_secs.max(1));
        while !sites.is_loaded() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !sites.is_loaded() {
            tracing::warn!("the site registry is not read yet; events get 503 until it is");
        }
        config.sites = SitePolicy::Known(sites.directory());
        Some(sites)
    };
    let delivery_timeout = Duration::from_millis(opts.delivery_timeout_ms.max(1));
    if delivery_timeout >= config.request_timeout {
        tracing::warn!(
            ?delivery_timeout,
            request_timeout = ?config.request_timeout,
            "the delivery timeout is not below the request timeout: clients may see dropped \
             requests instead of 503 during a Kafka outage"
        );
    }
    let sink = Arc::new(
        KafkaSink::new(KafkaSinkConfig {
            delivery_timeout,
            queue_max_messages: opts.producer_queue,
            linger: Duration::from_millis(opts.linger_ms),
            ..KafkaSinkConfig::new(&opts.kafka.brokers, &opts.kafka.events_topic)
        })
        .context("cannot create the Kafka producer")?,
    );
    let salts = Arc::new(
        KafkaSalts::new(&opts.kafka.brokers, &opts.kafka.salts_topic)
            .context("cannot create the salt client")?,
    );
    let collector = Collector::new(config, sink.clone(), salts);
    sink.register_metrics(collector.metrics().registry());
    // The collector serves what other sites' pages load: the tracker (and the demo).
    let statics = assets::service(files, vec![Mount::tracker(), Mount::demo()]);
    let owner = statics.clone();
    let router = Router::new()
        .route(Collector::owns, collector.clone())
        .route(move |p| owner.owns(p), statics);

    let listener = footfall_http::server::bind(opts.listen)
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    let addr = listener.local_addr().context("listener has no address")?;
    tracing::info!(%addr, brokers = %opts.kafka.brokers, topic = %opts.kafka.events_topic, "footfall collector started");

    footfall_http::serve(
        listener,
        Arc::new(router),
        opts.ingest.server.limits(),
        shutdown::signal(),
    )
    .await
    .context("server failed")?;
    if let Err(e) = collector.flush().await {
        tracing::warn!(error = %e, "producer flush on shutdown failed");
    }
    tracing::info!("stopped");
    Ok(())
}

/// The processor's store and where it records spent WebSocket tickets — the one place that
/// picks them: MongoDB when `--mongo-uri` is given (a distributed deployment: every processor
/// shares both), else the embedded SQLite store in `--data-dir` and this process's memory (one
/// processor).
async fn open_store(
    opts: &ProcessorOpts,
) -> anyhow::Result<(Arc<dyn Store>, Arc<dyn SpentTickets>)> {
    if let Some(uri) = opts.mongo_uri.as_deref() {
        return open_mongo(uri, opts).await;
    }
    match SqliteStore::open(SqliteConfig::new(&opts.data_dir)) {
        Ok(store) => Ok((Arc::new(store), Arc::new(LocalSpentTickets::default()))),
        Err(StoreError::Locked { path }) => bail!(
            "the data folder {path} is in use by another footfall process; stop it or pass \
             a different --data-dir"
        ),
        Err(e) => Err(e).context("cannot open the store"),
    }
}

#[cfg(feature = "mongo")]
async fn open_mongo(
    uri: &str,
    opts: &ProcessorOpts,
) -> anyhow::Result<(Arc<dyn Store>, Arc<dyn SpentTickets>)> {
    use processor::{MongoConfig, MongoStore};
    let config = MongoConfig {
        retention_days: opts.retention_days,
        ..MongoConfig::default()
    };
    let store = MongoStore::connect(uri, config)
        .await
        .context("cannot open the MongoDB store (check --mongo-uri / FOOTFALL_MONGO_URI)")?;
    let store = Arc::new(store);
    Ok((store.clone(), store))
}

#[cfg(not(feature = "mongo"))]
async fn open_mongo(
    _uri: &str,
    _opts: &ProcessorOpts,
) -> anyhow::Result<(Arc<dyn Store>, Arc<dyn SpentTickets>)> {
    bail!(
        "this footfall was built without the `mongo` feature, so --mongo-uri cannot be used: \
         rebuild with `cargo build --release -p footfall` (default features), or leave \
         --mongo-uri unset to use the embedded store in --data-dir"
    )
}

pub async fn processor(opts: ProcessorOpts) -> anyhow::Result<()> {
    let token = match opts.admin_token.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(t) => AdminToken::configured(t).context("--admin-token / FOOTFALL_ADMIN_TOKEN")?,
        None => bail!(
            "`footfall processor` needs an admin token for its stats API: pass --admin-token \
             or set FOOTFALL_ADMIN_TOKEN (at least 16 characters, e.g. `openssl rand -hex 32`)"
        ),
    };
    let files = assets::load(opts.assets_dir.as_deref())?;
    bootstrap(&opts.kafka).await?;
    let (store, spent_tickets) = open_store(&opts).await?;
    let source = KafkaSource::new(&KafkaSourceConfig {
        topic: opts.kafka.events_topic.clone(),
        dlq_topic: opts.kafka.dlq_topic.clone(),
        group: opts.group.clone(),
        session_timeout: Duration::from_millis(opts.session_timeout_ms),
        ..KafkaSourceConfig::new(&opts.kafka.brokers)
    })
    .context("cannot create the Kafka consumer")?;
    let metrics = Arc::new(PipelineMetrics::new());

    let listener = footfall_http::server::bind(opts.listen)
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    let addr = listener.local_addr().context("listener has no address")?;
    tracing::info!(%addr, brokers = %opts.kafka.brokers, group = %opts.group, "footfall processor started");

    // One stop signal for both halves: the HTTP server and the pipeline.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown::signal().await;
        let _ = stop_tx.send(true);
    });
    // Live metrics: this processor publishes the deltas of each batch it newly stores, tagged
    // with the store's write and acknowledged before the batch's offsets are committed; its
    // gateway merges every processor's deltas from the metrics topic (each write once), so
    // dashboards see global numbers, also after a processor is killed.
    let publisher = Arc::new(
        MetricsPublisher::new(&opts.kafka.brokers, &opts.kafka.metrics_topic)
            .map_err(anyhow::Error::msg)?,
    );
    let live = LiveHub::default();
    tokio::spawn(live.clone().run_publisher());
    let subscriber = tokio::spawn({
        let (brokers, topic, live) = (
            opts.kafka.brokers.clone(),
            opts.kafka.metrics_topic.clone(),
            live.clone(),
        );
        let stop = stopped(stop_rx.clone());
        async move {
            if let Err(e) = run_subscriber(&brokers, &topic, live, stop).await {
                tracing::error!(error = %e, "live metrics subscriber failed");
            }
        }
    });
    let store: Arc<dyn Store> = Arc::new(LiveStore::new(store, publisher));
    // The registry lives in the store; collectors learn it from the sites topic, which is
    // filled again from the store on every start-up.
    let sites_topic = SitesTopic::new(&opts.kafka.brokers, &opts.kafka.sites_topic)
        .map_err(anyhow::Error::msg)?;
    let registry = SiteRegistry::open(store.clone())
        .await
        .context("cannot read the site registry")?
        .with_announcer(Arc::new(sites_topic))
        .await
        .map_err(|e| anyhow::anyhow!("cannot publish the site registry to Kafka: {e}"))?;
    // Today's visit figures of watched sites, from the store every few seconds.
    tokio::spawn(refresh_visits(live.clone(), store.clone(), VISIT_REFRESH));

    let stats = StatsApi::new(store.clone(), token.clone());
    // Share links watch the live view of their own site, as they read its stats; tickets
    // are spent where every processor sees them.
    let gateway = Gateway::new(live.clone(), token.clone(), GatewayLimits::default())
        .with_credentials(stats.credentials().clone())
        .with_allowed_origins(opts.ws_allowed_origins.clone())
        .with_spent_tickets(spent_tickets);
    let http = ProcessorHttp::new(stats, gateway)
        .with_sites(SitesApi::new(registry, token))
        .with_trusted_proxies(opts.server.trusted_proxies.clone());
    http.register_metrics(metrics.registry());
    let service = ProcessorService::new(http, store.clone(), &metrics);
    let statics = assets::service(files, vec![Mount::dashboard()]);
    let owner = statics.clone();
    let router = Router::new()
        .route(ProcessorService::owns, service)
        .route(move |p| owner.owns(p), statics);
    let limits = opts.server.limits();
    let server = tokio::spawn(footfall_http::serve(
        listener,
        Arc::new(router),
        limits,
        stopped(stop_rx.clone()),
    ));

    let config = PipelineConfig {
        max_batch: opts.batch_max.max(1),
        ..PipelineConfig::default()
    };
    pipeline::run(&source, store, &config, &metrics, stopped(stop_rx)).await;
    source.close().await;
    // Every stored batch's deltas went out before its offsets were committed (`LiveStore`).
    live.close();
    let _ = subscriber.await;
    match server.await {
        Ok(result) => result.context("server failed")?,
        Err(e) => tracing::warn!(error = %e, "server task failed"),
    }
    tracing::info!(stored = metrics.stored(), "stopped");
    Ok(())
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    // An error means the sender is gone, which only happens after it sent `true`.
    let _ = rx.wait_for(|stop| *stop).await;
}
