//! Privacy and ignore rules, checked once before anything is recorded.
//!
//! Footfall stores no cookies and reads nothing to fingerprint with; these rules decide
//! whether a page load is tracked at all. The reason is kept and reported by `stats()`,
//! so a site owner can see *why* nothing was sent.

use crate::config::Config;

/// What the browser says about the visitor's wishes and where the page runs.
#[derive(Debug, Default, Clone, Copy)]
pub struct Signals<'a> {
    /// `navigator.doNotTrack == "1"`
    pub do_not_track: bool,
    /// `navigator.globalPrivacyControl === true`
    pub global_privacy_control: bool,
    /// `location.hostname`
    pub hostname: &'a str,
    /// `location.protocol`, e.g. `https:`
    pub protocol: &'a str,
    /// `localStorage.footfall_ignore == "true"`: a site owner excluding their own visits
    /// (read by the shell, like the other browser facts).
    pub opted_out: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    DoNotTrack,
    Localhost,
    OptedOut,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::DoNotTrack => "dnt",
            Reason::Localhost => "localhost",
            Reason::OptedOut => "opt-out",
        }
    }
}

/// Why this page must not be tracked, if it must not.
pub fn check(cfg: &Config, s: &Signals<'_>) -> Option<Reason> {
    if s.opted_out {
        Some(Reason::OptedOut)
    } else if cfg.respect_dnt && (s.do_not_track || s.global_privacy_control) {
        Some(Reason::DoNotTrack)
    } else if cfg.ignore_localhost && is_local(s.hostname, s.protocol) {
        Some(Reason::Localhost)
    } else {
        None
    }
}

/// localhost (and its subdomains), 127.0.0.0/8, [::1] (as `location.hostname` writes it),
/// 0.0.0.0 and `file:` pages.
pub fn is_local(hostname: &str, protocol: &str) -> bool {
    let h = crate::text::trim_end(hostname, b'.');
    protocol == "file:"
        || matches!(h, "" | "localhost" | "[::1]" | "0.0.0.0")
        || h.ends_with(".localhost")
        || h.starts_with("127.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::flags;

    fn cfg(bits: u32) -> Config {
        Config::from_flags("s", bits, 0, 0, 0)
    }

    fn web(host: &str) -> Signals<'_> {
        Signals {
            hostname: host,
            protocol: "https:",
            ..Default::default()
        }
    }

    #[test]
    fn local_hosts() {
        for h in [
            "localhost",
            "app.localhost",
            "127.0.0.1",
            "127.1.2.3",
            "[::1]",
            "0.0.0.0",
            "",
        ] {
            assert!(is_local(h, "http:"), "{h}");
        }
        for h in [
            "example.com",
            "localhost.example.com",
            "10.0.0.1",
            "128.0.0.1",
        ] {
            assert!(!is_local(h, "https:"), "{h}");
        }
        assert!(is_local("", "file:"));
    }

    #[test]
    fn rules_apply_only_when_configured() {
        let dnt = Signals {
            do_not_track: true,
            ..web("example.com")
        };
        let gpc = Signals {
            global_privacy_control: true,
            ..web("example.com")
        };
        assert_eq!(check(&cfg(flags::DEFAULT), &dnt), None);
        assert_eq!(
            check(&cfg(flags::RESPECT_DNT), &dnt),
            Some(Reason::DoNotTrack)
        );
        assert_eq!(
            check(&cfg(flags::RESPECT_DNT), &gpc),
            Some(Reason::DoNotTrack)
        );
        assert_eq!(check(&cfg(flags::RESPECT_DNT), &web("example.com")), None);
        assert_eq!(check(&cfg(flags::DEFAULT), &web("localhost")), None);
        assert_eq!(
            check(&cfg(flags::IGNORE_LOCALHOST), &web("127.0.0.1")),
            Some(Reason::Localhost)
        );
        let out = Signals {
            opted_out: true,
            ..web("example.com")
        };
        assert_eq!(check(&cfg(0), &out), Some(Reason::OptedOut));
    }
}
