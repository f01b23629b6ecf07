//! The raw-event export of a large range through the real binary: the answer is streamed,
//! so the server's memory stays flat however large the export — measured from outside, as
//! an operator would, with the process's resident set (`/proc/PID/status`) while a slow
//! client reads about 70 MB of events (20 s, most of it writing them).

mod common;

use std::io::Read;
use std::time::Duration;

use common::*;
use processor::store::SqliteConfig;
use processor::{SqliteStore, Store};
use protocol::fixture::EventBuilder;

const SITE: &str = "default";
const EVENTS: usize = 100_000;

/// `VmRSS` or `VmHWM` (peak) of a process, in bytes.
fn memory(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_export_streams_with_flat_server_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = now_ms();
    let from = now - 6 * 3600 * 1000;
    // 100,000 events of about 700 bytes each (a long page title, as real pages have),
    // written straight into the data folder the binary then opens.
    {
        let store = SqliteStore::open(SqliteConfig::new(dir.path())).expect("open");
        let title = "A long page title that real sites have, ".repeat(12);
        for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(10_000) {
            let events: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    let mut e = EventBuilder::new(SITE, "page_view", from + i as i64 * 100)
                        .id(format!("export-{i:08}"))
                        .session(format!("s{}", i / 5))
                        .visitor(format!("{:016x}", i / 20))
                        .path(format!("/docs/page-{}", i % 50))
                        .title(title.clone())
                        .build();
                    e.received_at = e.ts;
                    e
                })
                .collect();
            store.insert_batch(events.into()).await.expect("insert");
        }
    }
    let ff = tokio::task::block_in_place(|| Footfall::start(dir.path(), &[]));
    let pid = ff.child.id();
    let (exported, baseline, peak_during) = tokio::task::block_in_place(|| {
        // Warm: the stats and the export's code paths have run once.
        let warm = call(
            "GET",
            &ff.url(&format!(
                "/api/export/events?site={SITE}&from={from}&to={}",
                from + 1000
            )),
            Some(TOKEN),
            None,
        );
        assert_eq!(warm.status, 200);
        let baseline = memory(pid, "VmRSS:");
        let resp = ureq::get(&ff.url(&format!(
            "/api/export/events?site={SITE}&from={from}&to={now}"
        )))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .expect("export");
        assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
        let mut body = resp.into_reader();
        let mut buf = vec![0u8; 64 * 1024];
        let (mut bytes, mut lines, mut peak) = (0usize, 0usize, 0u64);
        loop {
            let n = body.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
            bytes += n;
            // A slow client for the first few MB: the server must wait for it, not buffer.
            if bytes < 4 << 20 {
                std::thread::sleep(Duration::from_millis(2));
            }
            if bytes % (8 << 20) < n {
                peak = peak.max(memory(pid, "VmRSS:"));
            }
        }
        assert_eq!(lines, EVENTS, "every event, one per line");
        (bytes, baseline, peak)
    });
    let peak = memory(pid, "VmHWM:").max(peak_during);
    let grew = peak.saturating_sub(baseline);
    eprintln!(
        "exported {} MB; server RSS {} MB before, peak {} MB (+{} MB)",
        exported >> 20,
        baseline >> 20,
        peak >> 20,
        grew >> 20
    );
    assert!(exported > 60 << 20, "a large export: {exported} bytes");
    assert!(
        grew < (exported as u64) / 8,
        "memory grew by {grew} bytes for a {exported}-byte export"
    );
    tokio::task::block_in_place(|| drop(ff));
}
