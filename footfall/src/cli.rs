//! Command-line interface. Every flag has a `FOOTFALL_*` environment variable; the names in
//! DESIGN.md §9 are fixed because operators' scripts and the docs rely on them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use collector::config::{parse_allowed_origins, AllowedOrigins, CollectorConfig};
use ipnet::IpNet;

#[derive(Debug, Parser)]
#[command(
    name = "footfall",
    version,
    about = "Real-time, privacy-respecting web analytics you host yourself.",
    long_about = "Real-time, privacy-respecting web analytics you host yourself.\n\n\
        Start with `footfall standalone`: one process with the collector, an embedded store, \
        the stats API, the tracker and a demo page. Grow into `footfall collector` + \
        `footfall processor` with Kafka and MongoDB when one machine is no longer enough."
)]
pub struct Cli {
    #[command(flatten)]
    pub root: RootOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every subcommand.
#[derive(Debug, Args)]
pub struct RootOpts {
    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, global = true, env = "FOOTFALL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter, in tracing's EnvFilter syntax (e.g. `info`, `footfall=debug,hyper=warn`).
    #[arg(long, global = true, env = "FOOTFALL_LOG", default_value = "info")]
    pub log: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Everything in one process with an embedded SQLite store: the default way to start.
    ///
    /// Serves ingestion (/api/track, /api/batch), the tracker (/footfall.js), the demo site
    /// (/demo/), the dashboard (/dashboard/), the stats API (/api/stats/...), health
    /// (/api/health, /livez, /readyz) and Prometheus metrics (/metrics) on one address. A 2xx from ingestion means the events
    /// are fsynced in the store.
    Standalone(StandaloneOpts),
    /// The edge collector of a distributed deployment: validates events and produces them to
    /// Kafka, answering 2xx only once Kafka acknowledged them (acks=all).
    Collector(CollectorOpts),
    /// A processor of a distributed deployment: consumes events from Kafka into the store
    /// (committing offsets only after the store has them) and serves the stats API, the live
    /// feed, the dashboard, health and metrics. The store is MongoDB (--mongo-uri), or the
    /// embedded one in --data-dir without it.
    Processor(ProcessorOpts),
    /// The site registry: events are accepted only for registered sites.
    ///
    /// Works on the data folder of `footfall standalone` (running or not: a running server
    /// picks the change up within seconds), or on any running server's API with --server
    /// (a distributed deployment: a processor's address).
    Sites(SitesOpts),
}

#[derive(Debug, Args)]
pub struct SitesOpts {
    #[command(subcommand)]
    pub action: SitesAction,
    /// The data folder of `footfall standalone` whose registry to change.
    #[arg(
        long,
        global = true,
        env = "FOOTFALL_DATA_DIR",
        default_value = "footfall-data"
    )]
    pub data_dir: PathBuf,
    /// Change the registry of a running server through its API instead, e.g.
    /// `http://127.0.0.1:8081` (a processor) or `http://127.0.0.1:8080` (standalone).
    #[arg(long, global = true, env = "FOOTFALL_SERVER")]
    pub server: Option<String>,
    /// The server's admin token (with --server).
    #[arg(
        long,
        global = true,
        env = "FOOTFALL_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum SitesAction {
    /// Register a site (a host name such as `example.com`, or a short name).
    Add { site: String },
    /// Remove a site from the registry; its data stays.
    Remove { site: String },
    /// List the registered sites.
    List,
}

#[derive(Debug, Args)]
pub struct StandaloneOpts {
    /// HTTP address to listen on.
    #[arg(long, env = "FOOTFALL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Data folder: the journal and the SQLite store (footfall.db) live here.
    #[arg(long, env = "FOOTFALL_DATA_DIR", default_value = "footfall-data")]
    pub data_dir: PathBuf,
    /// Token for the stats API, WebSocket and dashboard. Generated and printed when unset.
    #[arg(long, env = "FOOTFALL_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Most MiB of acknowledged events the journal may hold ahead of the store (a burst
    /// larger than the store can index at once); past it ingestion answers 503.
    #[arg(long, env = "FOOTFALL_JOURNAL_MAX_MB", default_value_t = 1024)]
    pub journal_max_mb: u64,
    /// Cap on the store's size in MiB; past it ingestion answers 503 as on a full disk, so a
    /// flood of events cannot fill the disk the machine needs. 0 = no cap.
    #[arg(long, env = "FOOTFALL_STORE_MAX_MB", default_value_t = 10_240)]
    pub store_max_mb: u64,
    /// Comma-separated origins whose pages may open the live feed (/ws) besides the
    /// dashboard's own, e.g. `https://admin.example.com` (a dashboard served elsewhere, or a
    /// proxy that does not pass Host on). Requests without Origin (not from a browser page)
    /// need no entry.
    #[arg(long, env = "FOOTFALL_WS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub ws_allowed_origins: Vec<String>,
    #[command(flatten)]
    pub ingest: IngestOpts,
}

/// Options of the ingestion endpoints (standalone and collector).
#[derive(Debug, Clone, Args)]
pub struct IngestOpts {
    /// Requests per minute per client IP on the ingest endpoints (0 = unlimited).
    #[arg(long, env = "FOOTFALL_RATE_LIMIT", default_value_t = 200)]
    pub rate_limit: u32,
    /// Comma-separated origins allowed to send events: `https://example.com`,
    /// `https://*.example.com`, or bound to one site as `example.com=https://example.com`.
    /// Default: any origin.
    #[arg(long, env = "FOOTFALL_ALLOWED_ORIGINS", default_value = "*", value_parser = parse_allowed_origins)]
    pub allowed_origins: AllowedOrigins,
    /// Seconds allowed to receive a request body and make its events durable.
    #[arg(long, env = "FOOTFALL_REQUEST_TIMEOUT_SECS", default_value_t = 10)]
    pub request_timeout_secs: u64,
    #[command(flatten)]
    pub server: ServerOpts,
    /// Serve the tracker (tracker/), demo site (demo/) and dashboard (dashboard/) from this
    /// folder, as `cargo xtask dist` writes it, instead of the copies embedded in the binary.
    /// Read once at start-up.
    #[arg(long, env = "FOOTFALL_ASSETS_DIR")]
    pub assets_dir: Option<PathBuf>,
    /// Accept events for any site name, registered or not (how Footfall behaved before the
    /// site registry). Without it, events for unregistered sites get 403 `unknown_site`.
    #[arg(long, env = "FOOTFALL_ACCEPT_ANY_SITE")]
    pub accept_any_site: bool,
    /// Store the `userId` events carry as sent. Without it, a user id is stored only as a
    /// keyed hash (the same id gives the same hash, so it still counts one visitor), because
    /// sites send e-mail addresses and account numbers as user ids.
    #[arg(long, env = "FOOTFALL_STORE_USER_IDS")]
    pub store_user_ids: bool,
    /// MaxMind-format (MMDB) database giving country, region and city by client IP: GeoIP2 /
    /// GeoLite2 City or Country, DB-IP, or the `@ip-location-db/*-mmdb` npm packages. Repeat
    /// the flag (comma-separate in the env var) for databases split into IPv4 and IPv6
    /// files; the first that knows an address answers. Read into memory at start-up. The IP
    /// is never stored. Without one, the country comes from the browser's time zone.
    #[arg(long = "geoip-db", env = "FOOTFALL_GEOIP_DB", value_delimiter = ',')]
    pub geoip_db: Vec<PathBuf>,
}

impl IngestOpts {
    /// # Errors
    /// A GeoIP database that cannot be read.
    pub fn collector_config(&self) -> anyhow::Result<CollectorConfig> {
        let geoip = if self.geoip_db.is_empty() {
            None
        } else {
            let geoip = collector::geoip::GeoIp::open(&self.geoip_db)?;
            tracing::info!(databases = ?geoip, "geoip: location by client IP");
            Some(std::sync::Arc::new(geoip))
        };
        Ok(CollectorConfig {
            rate_limit_per_minute: self.rate_limit,
            trusted_proxies: self.server.trusted_proxies.clone(),
            allowed_origins: self.allowed_origins.clone(),
            request_timeout: Duration::from_secs(self.request_timeout_secs.max(1)),
            store_user_ids: self.store_user_ids,
            geoip,
            ..CollectorConfig::default()
        })
    }
}

/// Options of every HTTP server (standalone, collector, processor).
#[derive(Debug, Clone, Args)]
pub struct ServerOpts {
    /// Comma-separated CIDRs (or IPs) of proxies whose X-Forwarded-For is believed, e.g.
    /// your CDN's ranges. Without it the TCP peer is the client. Trusted proxies are also
    /// exempt from the per-address connection cap.
    #[arg(long, env = "FOOTFALL_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_proxy)]
    pub trusted_proxies: Vec<IpNet>,
    /// Most connections served at once.
    #[arg(long, env = "FOOTFALL_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Most connections one client address (IPv4, or IPv6 /64) may hold at once; past it its
    /// new connections are closed, so one client cannot take every slot. 0 = no cap.
    #[arg(
        long,
        env = "FOOTFALL_MAX_CONNECTIONS_PER_IP",
        default_value_t = footfall_http::server::DEFAULT_MAX_CONNECTIONS_PER_IP
    )]
    pub max_connections_per_ip: usize,
}

impl ServerOpts {
    pub fn limits(&self) -> footfall_http::ServerLimits {
        footfall_http::ServerLimits {
            max_connections: self.max_connections.max(1),
            max_connections_per_ip: self.max_connections_per_ip,
            trusted_proxies: self.trusted_proxies.clone(),
            ..Default::default()
        }
    }
}

/// Kafka settings shared by `footfall collector` and `footfall processor`. Both create the
/// topics they need on start-up when missing and never change existing ones.
#[derive(Debug, Clone, Args)]
pub struct KafkaOpts {
    /// Kafka bootstrap servers, comma-separated.
    #[arg(long, env = "FOOTFALL_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Topic of the events (key = site + visitor).
    #[arg(long, env = "FOOTFALL_EVENTS_TOPIC", default_value = "footfall.events")]
    pub events_topic: String,
    /// Dead-letter topic for messages that can never be stored.
    #[arg(
        long,
        env = "FOOTFALL_DLQ_TOPIC",
        default_value = "footfall.events.dlq"
    )]
    pub dlq_topic: String,
    /// Topic of the live-metric deltas processors emit.
    #[arg(
        long,
        env = "FOOTFALL_METRICS_TOPIC",
        default_value = "footfall.metrics"
    )]
    pub metrics_topic: String,
    /// Single-partition topic through which collectors agree on the daily visitor salt.
    #[arg(long, env = "FOOTFALL_SALTS_TOPIC", default_value = "footfall.salts")]
    pub salts_topic: String,
    /// Compacted topic through which processors tell collectors the registered sites.
    #[arg(long, env = "FOOTFALL_SITES_TOPIC", default_value = "footfall.sites")]
    pub sites_topic: String,
    /// Partitions of the events topic when it is created (the most processors that can
    /// share the work).
    #[arg(long, env = "FOOTFALL_PARTITIONS", default_value_t = 6)]
    pub partitions: i32,
    /// Retention of the events and dead-letter topics when they are created, in hours.
    #[arg(long, env = "FOOTFALL_RETENTION_HOURS", default_value_t = 168)]
    pub retention_hours: u64,
    /// Replication factor of created topics (3 on a production cluster).
    #[arg(long, env = "FOOTFALL_REPLICATION_FACTOR", default_value_t = 1)]
    pub replication_factor: i32,
    /// Seconds to wait for the brokers at start-up before giving up with an error.
    #[arg(
        long,
        env = "FOOTFALL_KAFKA_STARTUP_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub kafka_startup_timeout_secs: u64,
}

#[derive(Debug, Args)]
pub struct CollectorOpts {
    /// HTTP address to listen on.
    #[arg(long, env = "FOOTFALL_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub kafka: KafkaOpts,
    /// Milliseconds Kafka may take to acknowledge an event before the request gets 503
    /// (librdkafka `message.timeout.ms`); keep it below the request timeout.
    #[arg(long, env = "FOOTFALL_DELIVERY_TIMEOUT_MS", default_value_t = 5000)]
    pub delivery_timeout_ms: u64,
    /// Events that may wait for Kafka at once (librdkafka `queue.buffering.max.messages`);
    /// past it ingestion answers 503.
    #[arg(long, env = "FOOTFALL_PRODUCER_QUEUE", default_value_t = 100_000)]
    pub producer_queue: usize,
    /// Milliseconds the producer waits to fill a batch (librdkafka `linger.ms`).
    #[arg(long, env = "FOOTFALL_LINGER_MS", default_value_t = 5)]
    pub linger_ms: u64,
    #[command(flatten)]
    pub ingest: IngestOpts,
}

#[derive(Debug, Args)]
pub struct ProcessorOpts {
    /// HTTP address for the stats API, WebSocket gateway and dashboard.
    #[arg(long, env = "FOOTFALL_LISTEN", default_value = "0.0.0.0:8081")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub kafka: KafkaOpts,
    /// Consumer group; every processor of a deployment uses the same one.
    #[arg(long, env = "FOOTFALL_GROUP", default_value = "footfall-processors")]
    pub group: String,
    /// Milliseconds a silent processor (crashed, partitioned) keeps its partitions before
    /// the group hands them to the others (librdkafka `session.timeout.ms`).
    #[arg(long, env = "FOOTFALL_SESSION_TIMEOUT_MS", default_value_t = 10_000)]
    pub session_timeout_ms: u64,
    /// Most events per store insert and offset commit.
    #[arg(long, env = "FOOTFALL_BATCH_MAX", default_value_t = 2000)]
    pub batch_max: usize,
    /// MongoDB connection string (database from the path, else `footfall`). The store of a
    /// distributed deployment; without it the processor uses the embedded store in
    /// `--data-dir` (one processor, or tests).
    #[arg(long, env = "FOOTFALL_MONGO_URI", hide_env_values = true)]
    pub mongo_uri: Option<String>,
    /// Delete events and rollups older than this many days (MongoDB TTL); unset keeps them.
    #[arg(long, env = "FOOTFALL_RETENTION_DAYS")]
    pub retention_days: Option<u32>,
    /// Data folder of the embedded store, used when no --mongo-uri is given.
    #[arg(long, env = "FOOTFALL_DATA_DIR", default_value = "footfall-data")]
    pub data_dir: PathBuf,
    /// Serve the dashboard (dashboard/) from this folder, as `cargo xtask dist` writes it,
    /// instead of the copy embedded in the binary. Read once at start-up.
    #[arg(long, env = "FOOTFALL_ASSETS_DIR")]
    pub assets_dir: Option<PathBuf>,
    /// Token for the stats API, WebSocket and dashboard (required).
    #[arg(long, env = "FOOTFALL_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Comma-separated origins whose pages may open the live feed (/ws) besides the
    /// dashboard's own, e.g. `https://admin.example.com` (a dashboard served elsewhere, or a
    /// proxy that does not pass Host on). Requests without Origin (not from a browser page)
    /// need no entry.
    #[arg(long, env = "FOOTFALL_WS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub ws_allowed_origins: Vec<String>,
    #[command(flatten)]
    pub server: ServerOpts,
}

/// A CIDR, or a bare IP meaning just that address.
fn parse_proxy(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is not an IP address or CIDR (e.g. 10.0.0.0/8)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn proxies_accept_cidrs_and_ips() {
        assert_eq!(
            parse_proxy("10.0.0.0/8").map(|n| n.to_string()).as_deref(),
            Ok("10.0.0.0/8")
        );
        assert_eq!(
            parse_proxy("192.0.2.1").map(|n| n.to_string()).as_deref(),
            Ok("192.0.2.1/32")
        );
        assert!(parse_proxy("nope").is_err());
    }

    #[test]
    fn standalone_defaults() {
        let cli = Cli::try_parse_from(["footfall", "standalone"]).expect("parses");
        let Command::Standalone(opts) = cli.command else {
            panic!("standalone")
        };
        assert_eq!(opts.ingest.rate_limit, 200);
        assert!(!opts.ingest.accept_any_site);
        assert_eq!(opts.ingest.allowed_origins, AllowedOrigins::Any);
        assert_eq!(opts.listen.to_string(), "127.0.0.1:8080");
    }
}
