//! # footfall
//!
//! The one binary. It only parses arguments, sets up logging, opens what the chosen mode
//! needs, binds, and calls the libraries' `serve`; behaviour lives in the libraries.
//!
//! ## Layout
//! - `cli`: the clap definitions, shared option groups, and the `FOOTFALL_*` env vars.
//! - `standalone`: collector + embedded store + stats API in one process.
//! - `distributed` (feature `kafka`): `collector` (Kafka sink + Kafka-shared salts) and
//!   `processor` (Kafka source → store pipeline + stats API) subcommands, topic bootstrap,
//!   the store choice.
//! - `glue`: adapters that let the collector write to a processor store (the only place the
//!   two libraries meet).
//! - `sites`: `footfall sites add|remove|list`, on a data folder or a server's API.
//! - `assets`: the tracker, demo and dashboard files, embedded at build time (`build.rs`) or
//!   read from `--assets-dir`.
//! - `logging`, `shutdown`: tracing setup and the signal future.
//!
//! ## Features
//! `kafka` (`footfall collector`, `footfall processor`; builds librdkafka with cmake) and
//! `mongo` (the MongoDB store) are on by default. `cargo build --no-default-features -p
//! footfall` gives the standalone server alone, with no cmake and no librdkafka.

mod assets;
mod cli;
#[cfg(feature = "kafka")]
mod distributed;
mod glue;
mod logging;
mod shutdown;
mod sites;
mod standalone;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// jemalloc: the request path allocates and frees small buffers per event; glibc's malloc
/// was a sixth of the CPU under load (`bench/profile.sh`). Its background thread purges
/// freed pages after a few seconds, so a large query's memory goes back to the system.
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Starts jemalloc's background purging (see [`ALLOCATOR`]).
fn start_allocator_background_thread() {
    #[cfg(all(target_os = "linux", not(target_env = "musl")))]
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!(error = %e, "cannot start the allocator's background thread");
    }
}

/// How long the runtime waits for leftover blocking work once the service has stopped.
const SHUTDOWN_LEFTOVERS: std::time::Duration = std::time::Duration::from_secs(2);

/// Descriptors beyond the connections served: the listener, the store's files, Kafka and
/// MongoDB connections, the blocking pool's files.
const FD_HEADROOM: u64 = 1024;

/// Raises the soft open-files limit (often 1,024) towards the hard one, so the connection cap
/// is what bounds connections, not `EMFILE` in the accept loop, which would stall every client.
fn raise_open_files(max_connections: usize) {
    let wanted = (max_connections as u64).saturating_add(FD_HEADROOM);
    match rlimit::increase_nofile_limit(wanted) {
        Ok(limit) if limit < wanted => tracing::warn!(
            limit,
            wanted,
            "the open-files limit is below what --max-connections needs: raise it (ulimit -n, \
             systemd LimitNOFILE) or lower --max-connections"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(&cli.root);
    // A tool command: no runtime, no server.
    if let Command::Sites(opts) = cli.command {
        return match sites::run(opts) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    raise_open_files(match &cli.command {
        Command::Standalone(opts) => opts.ingest.server.max_connections,
        Command::Collector(opts) => opts.ingest.server.max_connections,
        Command::Processor(opts) => opts.server.max_connections,
        Command::Sites(_) => 0,
    });
    start_allocator_background_thread();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Standalone(opts) => standalone::run(opts).await,
            #[cfg(feature = "kafka")]
            Command::Collector(opts) => distributed::collector(opts).await,
            #[cfg(feature = "kafka")]
            Command::Processor(opts) => distributed::processor(opts).await,
            Command::Sites(_) => Ok(()),
            #[cfg(not(feature = "kafka"))]
            Command::Collector(_) | Command::Processor(_) => Err(anyhow::anyhow!(
                "this footfall was built without the `kafka` feature, which `footfall collector` \
                 and `footfall processor` need: rebuild with default features \
                 (`cargo build --release -p footfall`), or run `footfall standalone`"
            )),
        }
    });
    // Work still on the blocking pool (a stats query past its deadline, say) must not hold the
    // exit: everything that had to finish (draining, flushing) has finished by now.
    runtime.shutdown_timeout(SHUTDOWN_LEFTOVERS);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
