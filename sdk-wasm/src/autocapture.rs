//! Click autocapture: which clicks become which events.
//!
//! The JS shell finds the nearest link, button or `data-footfall-event` element (outside any
//! `data-footfall-ignore` one) and passes what it read as a [`Clicked`], with the element's
//! `data-footfall-prop-*` attributes as props; what the click *means* is decided here.

use alloc::string::String;

use crate::event::{truncate, Target, MAX_TEXT_LEN};

/// What the shell read from the clicked element.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Clicked {
    /// Lower-case tag name.
    pub tag: String,
    /// Visible text (`textContent`, or `value` for input buttons).
    pub text: String,
    pub id: String,
    /// Absolute link URL (`a.href`), for links.
    pub href: Option<String>,
    /// Host (with port) and protocol of the link, for the outbound check.
    pub link_host: String,
    pub link_protocol: String,
    /// `data-footfall-event`
    pub custom_event: Option<String>,
}

/// The event a click produces: its name and target. A valid `data-footfall-event` names
/// it; else a link to another host over http(s) is `outbound`; else it is a `click`.
pub fn classify(c: &Clicked, page_host: &str) -> (String, Target) {
    let outbound = c.href.is_some()
        && (c.link_protocol == "http:" || c.link_protocol == "https:")
        && !c.link_host.eq_ignore_ascii_case(page_host);
    let name = match &c.custom_event {
        Some(custom) if crate::event::valid_name(custom) => custom.clone(),
        _ if outbound => String::from("outbound"),
        _ => String::from("click"),
    };
    let text = clean_text(&c.text);
    let target = Target {
        tag: c.tag.clone(),
        text: (!text.is_empty()).then_some(text),
        href: c.href.clone(),
        id: (!c.id.is_empty()).then(|| c.id.clone()),
    };
    (name, target)
}

/// Collapses whitespace runs (markup indentation, newlines) to single spaces and trims,
/// then cuts to the collector's text limit.
pub fn clean_text(s: &str) -> String {
    let mut out = String::new();
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.len() > MAX_TEXT_LEN * 4 {
            break;
        }
    }
    String::from(truncate(&out, MAX_TEXT_LEN))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(href: &str, host: &str) -> Clicked {
        Clicked {
            tag: "a".into(),
            text: "\n   Read   the\tdocs \n".into(),
            href: Some(href.into()),
            link_host: host.into(),
            link_protocol: href.split(':').next().unwrap().to_string() + ":",
            ..Default::default()
        }
    }

    #[test]
    fn internal_link_is_a_click() {
        let (name, target) = classify(
            &link("https://example.com/docs", "example.com"),
            "example.com",
        );
        assert_eq!(name, "click");
        assert_eq!(target.text.as_deref(), Some("Read the docs"));
        assert_eq!(target.href.as_deref(), Some("https://example.com/docs"));
        assert_eq!(target.id, None);
    }

    #[test]
    fn other_host_is_outbound() {
        let (name, _) = classify(&link("https://github.com/x", "github.com"), "example.com");
        assert_eq!(name, "outbound");
        let (name, _) = classify(&link("mailto:a@b.c", ""), "example.com");
        assert_eq!(name, "click", "mailto is not outbound traffic");
        let (name, _) = classify(&link("https://Example.com/", "Example.com"), "example.com");
        assert_eq!(name, "click");
        let (name, _) = classify(
            &link("http://example.com:81/", "example.com:81"),
            "example.com",
        );
        assert_eq!(name, "outbound", "another port is another site");
    }

    #[test]
    fn custom_event_names_the_click() {
        let c = Clicked {
            tag: "button".into(),
            text: "Sign up".into(),
            id: "cta".into(),
            custom_event: Some("signup".into()),
            ..Default::default()
        };
        let (name, target) = classify(&c, "example.com");
        assert_eq!(name, "signup");
        assert_eq!(target.id.as_deref(), Some("cta"));
        assert_eq!(target.href, None);
        let bad = Clicked {
            custom_event: Some("<bad name>".into()),
            ..c
        };
        assert_eq!(classify(&bad, "example.com").0, "click");
    }

    #[test]
    fn long_text_is_cut() {
        let t = clean_text(&"word ".repeat(1000));
        assert_eq!(t.chars().count(), MAX_TEXT_LEN);
        assert_eq!(clean_text("   "), "");
    }
}
