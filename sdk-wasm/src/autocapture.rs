//! Click autocapture: which clicks become which events.
//!
//! The JS shell finds the nearest link, button or `data-footfall-event` element (outside any
//! `data-footfall-ignore` one) and passes what it read as a [`Clicked`], with the element's
//! `data-footfall-prop-*` attributes as props; what the click *means* is decided here.

/// What the shell read from the clicked element.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Clicked<'a> {
    /// Lower-case tag name.
    pub tag: &'a str,
    /// Visible text (`textContent`, or `value` for input buttons), whitespace runs already
    /// collapsed by the shell (a one-line regex there; Unicode whitespace tables here).
    pub text: &'a str,
    pub id: &'a str,
    /// Absolute link URL (`a.href`), for links.
    pub href: Option<&'a str>,
    /// Host (with port) and protocol of the link, for the outbound check.
    pub link_host: &'a str,
    pub link_protocol: &'a str,
    /// `data-footfall-event`
    pub custom_event: Option<&'a str>,
}

/// The name of the event a click produces: a valid `data-footfall-event` names it; else a
/// link to another host over http(s) is `outbound`; else it is a `click`.
pub fn classify<'a>(c: &Clicked<'a>, page_host: &str) -> &'a str {
    let outbound = c.href.is_some()
        && (c.link_protocol == "http:" || c.link_protocol == "https:")
        && !c.link_host.eq_ignore_ascii_case(page_host);
    match c.custom_event {
        Some(custom) if crate::event::valid_name(custom) => custom,
        _ if outbound => "outbound",
        _ => "click",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link<'a>(href: &'a str, host: &'a str) -> Clicked<'a> {
        Clicked {
            tag: "a",
            text: "Read the docs",
            href: Some(href),
            link_host: host,
            link_protocol: if href.starts_with("https:") {
                "https:"
            } else {
                "mailto:"
            },
            ..Default::default()
        }
    }

    #[test]
    fn internal_link_is_a_click() {
        let c = link("https://example.com/docs", "example.com");
        assert_eq!(classify(&c, "example.com"), "click");
    }

    #[test]
    fn other_host_is_outbound() {
        let out = link("https://github.com/x", "github.com");
        assert_eq!(classify(&out, "example.com"), "outbound");
        assert_eq!(
            classify(&link("mailto:a@b.c", ""), "example.com"),
            "click",
            "mailto"
        );
        let same = link("https://Example.com/", "Example.com");
        assert_eq!(classify(&same, "example.com"), "click");
        let port = link("https://example.com:81/", "example.com:81");
        assert_eq!(
            classify(&port, "example.com"),
            "outbound",
            "another port, another site"
        );
    }

    #[test]
    fn custom_event_names_the_click() {
        let c = Clicked {
            tag: "button",
            text: "Sign up",
            custom_event: Some("signup"),
            ..Default::default()
        };
        assert_eq!(classify(&c, "example.com"), "signup");
        let bad = Clicked {
            custom_event: Some("<bad name>"),
            ..c
        };
        assert_eq!(classify(&bad, "example.com"), "click");
    }
}
