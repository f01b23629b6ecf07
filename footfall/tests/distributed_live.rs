//! Live metrics with several processors: each processor sees only its partitions and
//! publishes deltas to `footfall.metrics`; every gateway merges the whole topic. A dashboard
//! connected to either processor must see the same numbers as standalone fed the same events.

mod common;

use std::time::Duration;

use common::kafka::{eventually, register_site, Service, Tansu};
use common::live::LiveClient;
use common::*;

const SITE: &str = "livecmp.test";
const VISITORS: usize = 40;
const PAGES: usize = 7;
const PER_VISITOR: usize = 6;

/// The same events for both deployments: identified visitors (`userId`), so their ids do not
/// depend on each deployment's daily salt.
fn batches() -> Vec<String> {
    (0..VISITORS)
        .map(|v| {
            let events: Vec<String> = (0..PER_VISITOR)
                .map(|i| {
                    format!(
                        r#"{{"event":"page_view","eventId":"lv-{v:03}-{i:02}","userId":"user-{v}","page":"https://{SITE}/p{}","timezone":"Europe/Berlin"}}"#,
                        (v + i) % PAGES
                    )
                })
                .collect();
            format!(r#"{{"site":"{SITE}","events":[{}]}}"#, events.join(","))
        })
        .collect()
}

fn send_all(url: &str) {
    for body in batches() {
        let (status, reply) = post(url, "text/plain", &body);
        assert_eq!(status, 202, "{reply}");
    }
}

#[test]
fn two_processors_and_a_gateway_match_standalone() {
    let total = (VISITORS * PER_VISITOR) as u64;
    let dir = tempfile::tempdir().expect("tempdir");

    // Standalone, fed the events.
    let standalone = Footfall::start(&dir.path().join("standalone"), &["--rate-limit", "0"]);
    standalone.add_site(SITE);
    send_all(&standalone.url("/api/batch"));

    // Distributed: one collector, two processors sharing the partitions.
    let broker = Tansu::start();
    let collector = Service::collector(&broker.brokers(), dir.path(), &[]);
    let a = Service::processor(
        &broker.brokers(),
        &dir.path().join("a"),
        &["--batch-max", "20"],
    );
    let b = Service::processor(
        &broker.brokers(),
        &dir.path().join("b"),
        &["--batch-max", "20"],
    );
    register_site(&a, &[&collector], SITE);
    // Both members must own partitions before the load, or one would see everything.
    std::thread::sleep(Duration::from_secs(3));
    send_all(&collector.url("/api/batch"));
    let shared = eventually(Duration::from_secs(60), || {
        a.stored(SITE) + b.stored(SITE) >= total
    });
    assert!(
        shared,
        "not everything stored:\nA:\n{}\nB:\n{}",
        a.log_text(),
        b.log_text()
    );
    assert!(
        a.stored(SITE) > 0 && b.stored(SITE) > 0,
        "each processor must have stored part of the events (A {}, B {})",
        a.stored(SITE),
        b.stored(SITE)
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let complete = |t: &protocol::live::LiveUpdate| t.metrics.today.pageviews >= total;
        let mut views = Vec::new();
        for base in [standalone.base.clone(), a.url(""), b.url("")] {
            let (mut client, snapshot) = LiveClient::connect(&base, SITE).await;
            let update = if complete(&snapshot) {
                snapshot
            } else {
                client
                    .until(Duration::from_secs(30), complete)
                    .await
                    .unwrap_or_else(|| panic!("{base}: never saw all {total} page views"))
            };
            views.push((base, update.metrics));
        }
        let (_, reference) = &views[0];
        assert_eq!(reference.today.pageviews, total);
        assert_eq!(reference.active_visitors, VISITORS as u64);
        for (base, m) in &views[1..] {
            assert_eq!(m.today.pageviews, reference.today.pageviews, "{base}");
            let diff = m.active_visitors.abs_diff(reference.active_visitors) as f64;
            assert!(
                diff / reference.active_visitors as f64 <= 0.02,
                "{base}: {} active visitors vs {} standalone",
                m.active_visitors,
                reference.active_visitors
            );
            assert_eq!(m.today.visitors, reference.today.visitors, "{base}");
            assert_eq!(m.recent.pages, reference.recent.pages, "{base}");
            assert_eq!(m.recent.countries, reference.recent.countries, "{base}");
        }
    });
}
