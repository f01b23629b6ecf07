//! Time zone → country. Footfall never looks up IP addresses: the browser's IANA time zone
//! (`Intl.DateTimeFormat().resolvedOptions().timeZone`) is a coarse, privacy-friendly proxy.

use crate::tz_table::ZONE_COUNTRY;

/// The ISO 3166-1 alpha-2 country of an IANA time zone name (including legacy aliases such
/// as `Asia/Calcutta`), or `None` for zones without a country (`UTC`, `Etc/GMT+3`, unknown).
pub fn country_for_timezone(zone: &str) -> Option<&'static str> {
    ZONE_COUNTRY
        .binary_search_by(|(name, _)| (*name).cmp(zone))
        .ok()
        .map(|i| ZONE_COUNTRY[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_zones_and_aliases() {
        assert_eq!(country_for_timezone("Asia/Kolkata"), Some("IN"));
        assert_eq!(country_for_timezone("Asia/Calcutta"), Some("IN"));
        assert_eq!(country_for_timezone("Europe/Berlin"), Some("DE"));
        assert_eq!(country_for_timezone("America/New_York"), Some("US"));
    }

    #[test]
    fn legacy_names_of_merged_zones_keep_their_own_country() {
        // tzdata links these to a zone of another country (Asmera → Nairobi, Kenya's).
        for (zone, cc) in [
            ("Africa/Asmera", "ER"),
            ("Atlantic/Jan_Mayen", "SJ"),
            ("Iceland", "IS"),
            ("Pacific/Truk", "FM"),
            ("America/Virgin", "VI"),
            ("Europe/Belfast", "GB"),
        ] {
            assert_eq!(country_for_timezone(zone), Some(cc), "{zone}");
        }
    }

    #[test]
    fn zones_without_country() {
        assert_eq!(country_for_timezone("UTC"), None);
        assert_eq!(country_for_timezone("Etc/GMT+3"), None);
        assert_eq!(country_for_timezone(""), None);
        assert_eq!(country_for_timezone("Mars/Olympus_Mons"), None);
    }

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(ZONE_COUNTRY.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
