//! `cargo xtask dist`: everything the server serves, into `dist/` — the tracker, its npm
//! package and the demo site (`crate::tracker`), then the dashboard (`crate::dashboard`).
//! `footfall` embeds `dist/{tracker,demo,dashboard}` when it is built afterwards.

pub fn run(_args: &[String]) -> anyhow::Result<()> {
    crate::tracker::build()?;
    crate::dashboard::build()
}
