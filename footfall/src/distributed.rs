//! `footfall collector` and `footfall processor`: the distributed deployment.
//!
//! The Kafka sink, the consumer and the MongoDB store are not built yet; until they are, these
//! subcommands refuse to start with a clear message rather than running a half-system.

use anyhow::bail;

use crate::cli::{CollectorOpts, ProcessorOpts};

pub async fn collector(opts: CollectorOpts) -> anyhow::Result<()> {
    bail!(
        "`footfall collector` needs the Kafka sink (brokers {}), which is not built yet \
         (issue 4: distributed ingestion). Run `footfall standalone` for now.",
        opts.brokers
    )
}

pub async fn processor(opts: ProcessorOpts) -> anyhow::Result<()> {
    bail!(
        "`footfall processor` needs the Kafka consumer and the MongoDB store ({}), which are \
         not built yet (issues 4 and 5). Run `footfall standalone` for now.",
        opts.mongo_uri
    )
}
