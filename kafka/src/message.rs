//! The messages of `footfall.events`, as the collector writes them and the processor reads
//! them: JSON values (`protocol::event::encode`) with a schema-version header, keyed by site
//! and visitor.

/// Header carrying the event schema version of the JSON value, so consumers can route a
/// message they cannot read without parsing it first.
pub const SCHEMA_HEADER: &str = "footfall-schema";

/// The message key: site and visitor, so one visitor's events land on one partition, in
/// order. (The unit separator cannot occur in a validated site.)
pub fn event_key(site: &str, visitor: &str) -> String {
    format!("{site}\u{1f}{visitor}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_keep_site_and_visitor_apart() {
        assert_ne!(super::event_key("a.b", "c"), super::event_key("a", "b.c"));
        assert_eq!(super::event_key("s", "v"), "s\u{1f}v");
    }
}
