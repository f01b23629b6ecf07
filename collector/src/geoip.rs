//! Country, region and city from the client's IP address, with MaxMind-format (MMDB)
//! databases read by the `maxminddb` crate. Looked up at the edge, once per request; the
//! address itself is never stored or passed on, only the place.
//!
//! Two record layouts are understood, so both common kinds of database work as they come:
//! - **GeoIP2 / GeoLite2** (MaxMind, and DB-IP's own MMDB downloads): `country.iso_code`,
//!   `subdivisions[0].iso_code` (the region becomes `DE-BE`, ISO 3166-2) and
//!   `city.names.en`;
//! - **ip-location-db** (the npm `@ip-location-db/*-mmdb` packages): flat `country_code`,
//!   `state1` (a name: the region is then `California`) and `city`.
//!
//! Several databases may be given (ip-location-db ships IPv4 and IPv6 in separate files):
//! the first that knows an address answers. A database is read into memory once at start-up
//! (its size in RAM), so a lookup does no IO.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{path, Reader};

/// Longest value kept from a database (names are short; this bounds a hostile file).
const MAX_VALUE_CHARS: usize = 100;

/// Where an address is, as far as the databases know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// ISO 3166-1 alpha-2, upper case.
    pub country: Option<String>,
    /// ISO 3166-2 (`DE-BE`) where the database has codes, else the subdivision's name.
    pub region: Option<String>,
    /// City name (English where the database has several languages).
    pub city: Option<String>,
}

/// Why a database could not be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the GeoIP database {path}: {reason}")]
pub struct GeoIpError {
    pub path: PathBuf,
    pub reason: String,
}

/// The opened databases. Cheap to share behind an `Arc`; lookups need no lock.
pub struct GeoIp {
    databases: Vec<(PathBuf, Reader<Vec<u8>>)>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.databases.iter().map(|(p, _)| p))
            .finish()
    }
}

impl GeoIp {
    /// Opens every database in `paths`, checking each answers a lookup.
    ///
    /// # Errors
    /// A file that is missing, unreadable or not an MMDB database.
    pub fn open(paths: &[impl AsRef<Path>]) -> Result<GeoIp, GeoIpError> {
        let mut databases = Vec::with_capacity(paths.len());
        for p in paths {
            let path = p.as_ref().to_path_buf();
            let reader = Reader::open_readfile(&path).map_err(|e| GeoIpError {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            databases.push((path, reader));
        }
        Ok(GeoIp { databases })
    }

    /// Where `ip` is; `None` when no database knows it (private and loopback addresses,
    /// unallocated space, an IPv6 address with IPv4 databases only).
    pub fn locate(&self, ip: IpAddr) -> Option<Location> {
        self.databases.iter().find_map(|(_, reader)| {
            let found = reader.lookup(ip).ok()?;
            if !found.has_data() {
                return None;
            }
            let text = |p: &[maxminddb::PathElement<'_>]| -> Option<String> {
                found
                    .decode_path::<String>(p)
                    .ok()
                    .flatten()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty() && s.chars().count() <= MAX_VALUE_CHARS)
            };
            let country = text(&path!["country", "iso_code"])
                .or_else(|| text(&path!["country_code"]))
                .map(|c| c.to_ascii_uppercase())
                .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()));
            let region = match (&country, text(&path!["subdivisions", 0, "iso_code"])) {
                (Some(country), Some(code)) => Some(format!("{country}-{code}")),
                _ => text(&path!["state1"]),
            };
            let city = text(&path!["city", "names", "en"]).or_else(|| text(&path!["city"]));
            let location = Location {
                country,
                region,
                city,
            };
            (location != Location::default()).then_some(location)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_broken_file_is_a_clear_error() {
        let err = GeoIp::open(&["/nonexistent/geo.mmdb"]).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/geo.mmdb"), "{err}");
        let dir = tempfile::tempdir().expect("tempdir");
        let junk = dir.path().join("junk.mmdb");
        std::fs::write(&junk, b"not a database").expect("write");
        assert!(GeoIp::open(&[&junk]).is_err());
    }
}
