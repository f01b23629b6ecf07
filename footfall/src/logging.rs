//! Tracing setup: text for people, JSON for log pipelines.

use tracing_subscriber::EnvFilter;

use crate::cli::{LogFormat, RootOpts};

pub fn init(opts: &RootOpts) {
    let filter = EnvFilter::try_new(&opts.log).unwrap_or_else(|e| {
        eprintln!(
            "warning: invalid log filter {:?} ({e}); using `info`",
            opts.log
        );
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests calling main twice) is harmless, so its error is ignored.
    let _ = match opts.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
