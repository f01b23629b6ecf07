//! Device, browser and OS from a user agent ([woothee](https://crates.io/crates/woothee),
//! the project-independent UA database also used by Fluentd and Norikra), plus bot detection.
//! Only these derived fields are stored; the raw user agent never leaves the collector.

use std::sync::OnceLock;

use quick_cache::sync::Cache;

use crate::event::Device;

/// What Footfall keeps of a user agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgentInfo {
    pub device: Device,
    pub browser: String,
    pub os: String,
    pub is_bot: bool,
}

/// Markers of automation that woothee does not classify as crawlers. Lower-case substrings.
const BOT_MARKERS: &[&str] = &[
    "bot",
    "crawl",
    "spider",
    "slurp",
    "headlesschrome",
    "phantomjs",
    "lighthouse",
    "pingdom",
    "uptime",
    "facebookexternalhit",
    "python-requests",
    "python-urllib",
    "go-http-client",
    "okhttp",
    "java/",
    "curl/",
    "wget/",
    "libwww",
    "httpclient",
    "axios/",
    "node-fetch",
];

const UNKNOWN: &str = "Unknown";

/// User agents kept parsed, process-wide. Real traffic repeats a few hundred of them, and
/// parsing one is the most expensive step of normalising an event; the bound (and the 512-
/// character cap on a user agent) keeps a flood of distinct ones at a few MB.
pub const CACHED_USER_AGENTS: usize = 10_000;

fn cache() -> &'static Cache<String, UserAgentInfo> {
    static CACHE: OnceLock<Cache<String, UserAgentInfo>> = OnceLock::new();
    CACHE.get_or_init(|| Cache::new(CACHED_USER_AGENTS))
}

/// [`parse`], answered from a bounded process-wide cache (see [`CACHED_USER_AGENTS`]).
pub fn parse_cached(user_agent: &str) -> UserAgentInfo {
    let cache = cache();
    if let Some(hit) = cache.get(user_agent) {
        return hit;
    }
    let info = parse(user_agent);
    cache.insert(user_agent.to_string(), info.clone());
    info
}

/// Parses a user agent. An empty one is not a bot (server-side `/api/track` clients may send
/// none) but has an unknown device.
pub fn parse(user_agent: &str) -> UserAgentInfo {
    let lower = user_agent.to_ascii_lowercase();
    let marked_bot = BOT_MARKERS.iter().any(|m| lower.contains(m));
    let Some(parsed) = woothee::parser::Parser::new().parse(user_agent) else {
        return UserAgentInfo {
            device: Device::Other,
            browser: UNKNOWN.into(),
            os: UNKNOWN.into(),
            is_bot: marked_bot,
        };
    };
    let is_tablet = parsed.os == "iPad"
        || lower.contains("tablet")
        || (lower.contains("android") && !lower.contains("mobile"));
    let device = match parsed.category {
        _ if is_tablet => Device::Tablet,
        "pc" => Device::Desktop,
        "smartphone" | "mobilephone" => Device::Mobile,
        _ => Device::Other,
    };
    let known = |s: &str| {
        if s.is_empty() || s == "UNKNOWN" {
            UNKNOWN.to_string()
        } else {
            s.to_string()
        }
    };
    UserAgentInfo {
        device,
        browser: known(parsed.name),
        os: known(parsed.os),
        is_bot: marked_bot || parsed.category == "crawler",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_WIN: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
    const SAFARI_IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
    const ANDROID_TABLET: &str = "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    const FIREFOX_LINUX: &str =
        "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

    #[test]
    fn desktop_browsers() {
        let ua = parse(CHROME_WIN);
        assert_eq!(ua.device, Device::Desktop);
        assert_eq!(ua.browser, "Chrome");
        assert!(ua.os.starts_with("Windows"), "{}", ua.os);
        assert!(!ua.is_bot);
        let ff = parse(FIREFOX_LINUX);
        assert_eq!(
            (ff.device, ff.browser.as_str()),
            (Device::Desktop, "Firefox")
        );
    }

    #[test]
    fn phones_and_tablets() {
        assert_eq!(parse(SAFARI_IPHONE).device, Device::Mobile);
        assert_eq!(parse(SAFARI_IPAD).device, Device::Tablet);
        assert_eq!(parse(ANDROID_TABLET).device, Device::Tablet);
    }

    #[test]
    fn bots() {
        for ua in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "curl/8.4.0",
            "python-requests/2.31",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
        ] {
            assert!(parse(ua).is_bot, "{ua}");
        }
    }

    #[test]
    fn cached_answers_are_the_parsers() {
        for ua in [CHROME_WIN, SAFARI_IPHONE, "curl/8.4.0", "", CHROME_WIN] {
            assert_eq!(parse_cached(ua), parse(ua), "{ua}");
        }
    }

    #[test]
    fn empty_or_garbage_is_unknown_not_bot() {
        let ua = parse("");
        assert_eq!(
            (ua.device, ua.browser.as_str(), ua.is_bot),
            (Device::Other, "Unknown", false)
        );
        assert!(!parse("\u{0}\u{ffff}☃").is_bot);
    }
}
