//! What of the dashboard lives in its URL, so a view can be bookmarked and shared: the
//! query string (`?site=shop.example&view=history&range=7d&filter=page%3A%2Fpricing&compare=previous`)
//! and, for a share link, the fragment (`#share=<token>`, which browsers never send to a
//! server). Pure: parsing and writing are unit-tested on the host; `hooks::use_url_sync`
//! writes it, `main` reads it once at start. A child of `state` (it is made of the state's
//! `Range` and `View`, and the state is restored from it).

use protocol::stats::{Compare, Filter, MAX_FILTERS};

use super::{Range, View};
use crate::api::{decode_component, encode};
use crate::metric::Metric;

/// The bookmarkable part of the state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UrlState {
    pub site: Option<String>,
    pub view: View,
    pub range: Range,
    pub filters: Vec<Filter>,
    pub compare: Option<Compare>,
    /// The chart's metric.
    pub metric: Metric,
    /// The custom property whose values are broken down.
    pub prop: Option<String>,
}

impl UrlState {
    /// Reads a query string (with or without the leading `?`). Unknown keys and unreadable
    /// values are skipped: an old or hand-edited bookmark still opens.
    pub fn parse(query: &str) -> UrlState {
        let mut s = UrlState::default();
        for (key, value) in pairs(query) {
            match key.as_str() {
                "site" if !value.trim().is_empty() => s.site = Some(value.trim().to_lowercase()),
                "view" => {
                    s.view = match value.as_str() {
                        "history" => View::History,
                        _ => View::Live,
                    }
                }
                "range" => s.range = parse_range(&value).unwrap_or_default(),
                "filter" if s.filters.len() < MAX_FILTERS => {
                    if let Ok(f) = Filter::parse(&value) {
                        // One filter per field, as the dashboard sets them; the last wins.
                        s.filters.retain(|g| g.field != f.field);
                        s.filters.push(f);
                    }
                }
                "compare" => s.compare = Compare::from_name(&value),
                "metric" => s.metric = Metric::from_key(&value).unwrap_or_default(),
                "prop" if !value.trim().is_empty() => s.prop = Some(value.trim().to_string()),
                _ => {}
            }
        }
        s
    }

    /// The query string, `?` included (empty when everything is a default). Defaults are left
    /// out, so a plain dashboard URL stays plain.
    pub fn to_query(&self) -> String {
        let mut parts: Vec<(&str, String)> = Vec::new();
        if let Some(site) = &self.site {
            parts.push(("site", site.clone()));
        }
        if self.view == View::History {
            parts.push(("view", "history".into()));
        }
        if self.range != Range::default() {
            parts.push(("range", format_range(&self.range)));
        }
        for f in &self.filters {
            parts.push(("filter", f.to_param()));
        }
        if let Some(c) = self.compare {
            parts.push(("compare", c.name().into()));
        }
        if self.metric != Metric::default() {
            parts.push(("metric", self.metric.key().into()));
        }
        if let Some(p) = &self.prop {
            parts.push(("prop", p.clone()));
        }
        if parts.is_empty() {
            return String::new();
        }
        let joined: Vec<String> = parts
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        format!("?{}", joined.join("&"))
    }
}

/// The share-link token in a fragment (`#share=<token>`), if there is one.
pub fn share_token(fragment: &str) -> Option<String> {
    pairs(fragment.trim_start_matches('#'))
        .find(|(k, _)| k == "share")
        .map(|(_, v)| v.trim().to_string())
        .filter(|t| !t.is_empty())
}

fn pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode_component(k), decode_component(v))
        })
}

/// `today`, `7d`, `30d` or `2026-11-01..2026-11-07`.
fn format_range(range: &Range) -> String {
    match range {
        Range::Today => "today".into(),
        Range::Last7Days => "7d".into(),
        Range::Last30Days => "30d".into(),
        Range::Custom { from, to } => format!("{from}..{to}"),
    }
}

fn parse_range(s: &str) -> Option<Range> {
    match s {
        "today" => Some(Range::Today),
        "7d" => Some(Range::Last7Days),
        "30d" => Some(Range::Last30Days),
        _ => {
            let (from, to) = s.split_once("..")?;
            // Only dates the range can use (checked again when the span is computed).
            crate::shape::parse_date(from, 0)?;
            crate::shape::parse_date(to, 0)?;
            Some(Range::Custom {
                from: from.into(),
                to: to.into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::stats::{Dimension, Field};

    #[test]
    fn a_view_round_trips_through_its_url() {
        let s = UrlState {
            site: Some("shop.example".into()),
            view: View::History,
            range: Range::Custom {
                from: "2026-11-01".into(),
                to: "2026-11-07".into(),
            },
            filters: vec![
                Filter::is(Dimension::Page, "/blog/*"),
                Filter::is_not(Dimension::Referrer, "(direct)"),
                Filter::is(Field::Prop("plan".into()), "pro & co"),
            ],
            compare: Some(Compare::Year),
            metric: Metric::BounceRate,
            prop: Some("plan".into()),
        };
        let q = s.to_query();
        assert_eq!(
            q,
            "?site=shop.example&view=history&range=2026-11-01..2026-11-07\
             &filter=page%3A%2Fblog%2F%2A&filter=referrer%21%3A%28direct%29\
             &filter=prop.plan%3Apro%20%26%20co&compare=year&metric=bounce_rate&prop=plan"
        );
        assert_eq!(UrlState::parse(&q), s);
        for range in [Range::Today, Range::Last7Days, Range::Last30Days] {
            let s = UrlState {
                range,
                ..UrlState::default()
            };
            assert_eq!(UrlState::parse(&s.to_query()), s);
        }
    }

    #[test]
    fn defaults_stay_out_of_the_url() {
        assert_eq!(UrlState::default().to_query(), "");
        assert_eq!(UrlState::parse(""), UrlState::default());
        assert_eq!(UrlState::parse("?"), UrlState::default());
    }

    #[test]
    fn hand_edited_urls_open_what_they_can() {
        let s = UrlState::parse(
            "?site=Shop.Example&range=yesterday&filter=nope:1&filter=country:DE\
             &filter=country!:FR&compare=decade&metric=x&view=weird&utm=1&prop=",
        );
        assert_eq!(s.site.as_deref(), Some("shop.example"));
        assert_eq!(s.range, Range::Today);
        // The unknown dimension is dropped; the later country filter replaces the earlier.
        assert_eq!(s.filters, vec![Filter::is_not(Dimension::Country, "FR")]);
        assert_eq!(
            (s.compare, s.metric, s.view, s.prop),
            (None, Metric::Visitors, View::Live, None)
        );
        assert_eq!(
            UrlState::parse("range=2026-02-30..2026-03-01").range,
            Range::Today
        );
        // Form-style spaces and raw characters a person types.
        let s = UrlState::parse("filter=page:/a+b&filter=event:sign up");
        assert_eq!(
            s.filters,
            vec![
                Filter::is(Dimension::Page, "/a b"),
                Filter::is(Dimension::Event, "sign up")
            ]
        );
        // At most as many filters as the API takes.
        let many: String = (0..40).map(|i| format!("&filter=prop.k{i}:v")).collect();
        assert_eq!(UrlState::parse(&many).filters.len(), MAX_FILTERS);
    }

    #[test]
    fn share_tokens_come_from_the_fragment() {
        assert_eq!(share_token("#share=abc.def").as_deref(), Some("abc.def"));
        assert_eq!(share_token("share=a%2Bb").as_deref(), Some("a+b"));
        assert_eq!(share_token("#x=1&share=t").as_deref(), Some("t"));
        assert_eq!(share_token("#share="), None);
        assert_eq!(share_token(""), None);
    }
}
