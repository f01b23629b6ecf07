//! Fields and filters of the stats API: `dimension=page`, `dimension=prop.plan`,
//! `filter=country:DE`, `filter=page!:/blog/*`. Parsing, formatting and matching live here
//! once, so the server and the dashboard (which builds the same URLs) cannot disagree.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Dimension;

/// What a breakdown groups by or a filter tests: a built-in [`Dimension`] or a custom property
/// (`prop.NAME`). Written as its name in URLs and JSON.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Dim(Dimension),
    /// A custom property sent with events (`props`), by name.
    Prop(String),
}

/// The prefix of custom-property fields.
pub const PROP_PREFIX: &str = "prop.";

impl Field {
    /// `page`, `entry_page`, …, `prop.NAME`.
    pub fn name(&self) -> String {
        match self {
            Field::Dim(d) => d.name().to_string(),
            Field::Prop(p) => format!("{PROP_PREFIX}{p}"),
        }
    }

    pub fn parse(name: &str) -> Option<Field> {
        if let Some(prop) = name.strip_prefix(PROP_PREFIX) {
            return (!prop.is_empty()).then(|| Field::Prop(prop.to_string()));
        }
        Dimension::from_name(name).map(Field::Dim)
    }

    /// Whether `*` in a filter value is a wildcard (page paths); elsewhere it is a character.
    pub fn allows_wildcards(&self) -> bool {
        matches!(self, Field::Dim(d) if d.is_page_like())
    }
}

impl From<Dimension> for Field {
    fn from(d: Dimension) -> Self {
        Field::Dim(d)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Field::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown dimension {name:?}")))
    }
}

/// `is` (`DIMENSION:VALUE`) or `is not` (`DIMENSION!:VALUE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FilterOp {
    Is,
    IsNot,
}

/// One `filter=` parameter. Several are AND-ed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Filter {
    pub field: Field,
    pub op: FilterOp,
    /// Exact value; in page-like fields `*` matches any run of characters (`/blog/*`).
    pub value: String,
}

/// Longest filter value accepted (longer than any stored value can be).
pub const MAX_FILTER_VALUE_LEN: usize = 2048;
/// Most `filter=` parameters one request may carry.
pub const MAX_FILTERS: usize = 16;

/// Why a `filter=` parameter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

impl Filter {
    pub fn is(field: impl Into<Field>, value: impl Into<String>) -> Self {
        Filter {
            field: field.into(),
            op: FilterOp::Is,
            value: value.into(),
        }
    }

    pub fn is_not(field: impl Into<Field>, value: impl Into<String>) -> Self {
        Filter {
            field: field.into(),
            op: FilterOp::IsNot,
            value: value.into(),
        }
    }

    /// Reads `DIMENSION:VALUE` or `DIMENSION!:VALUE` (split at the first `:`).
    pub fn parse(param: &str) -> Result<Filter, FilterError> {
        let Some((key, value)) = param.split_once(':') else {
            return Err(FilterError(
                "must be DIMENSION:VALUE or DIMENSION!:VALUE".into(),
            ));
        };
        let (key, op) = match key.strip_suffix('!') {
            Some(k) => (k, FilterOp::IsNot),
            None => (key, FilterOp::Is),
        };
        let field = Field::parse(key.trim())
            .ok_or_else(|| FilterError(format!("unknown dimension {:?}", key.trim())))?;
        if value.chars().count() > MAX_FILTER_VALUE_LEN {
            return Err(FilterError(format!(
                "value longer than {MAX_FILTER_VALUE_LEN} characters"
            )));
        }
        Ok(Filter {
            field,
            op,
            value: value.to_string(),
        })
    }

    /// The `filter=` parameter value (before URL encoding).
    pub fn to_param(&self) -> String {
        let bang = match self.op {
            FilterOp::Is => "",
            FilterOp::IsNot => "!",
        };
        format!("{}{bang}:{}", self.field.name(), self.value)
    }

    /// Whether the pattern has wildcards that apply (page-like field and a `*` in it).
    pub fn is_pattern(&self) -> bool {
        self.field.allows_wildcards() && self.value.contains('*')
    }

    /// Whether the value matches, ignoring the operator.
    pub fn value_matches(&self, value: &str) -> bool {
        if self.is_pattern() {
            wildcard_match(&self.value, value)
        } else {
            self.value == value
        }
    }

    /// Whether an event or visit whose field has `value` passes this filter. `None` (the
    /// field is absent, e.g. a property not sent) never equals anything: `is` fails, `is not`
    /// passes.
    pub fn accepts(&self, value: Option<&str>) -> bool {
        let hit = value.is_some_and(|v| self.value_matches(v));
        match self.op {
            FilterOp::Is => hit,
            FilterOp::IsNot => !hit,
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_param())
    }
}

impl Serialize for Filter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_param())
    }
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Filter::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// `*` matches any run of characters (including none and `/`); everything else is literal.
/// Linear in practice: greedy with backtracking to the last star only.
pub fn wildcard_match(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, vi));
            pi += 1;
        } else if pi < p.len() && p[pi] == v[vi] {
            pi += 1;
            vi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        let f = Filter::parse("page:/blog/*").expect("ok");
        assert_eq!(f, Filter::is(Dimension::Page, "/blog/*"));
        assert_eq!(f.to_param(), "page:/blog/*");
        let f = Filter::parse("country!:DE").expect("ok");
        assert_eq!(f, Filter::is_not(Dimension::Country, "DE"));
        assert_eq!(f.to_param(), "country!:DE");
        let f = Filter::parse("prop.plan:pro:max").expect("ok");
        assert_eq!(f.field, Field::Prop("plan".into()));
        assert_eq!(f.value, "pro:max");
        assert!(Filter::parse("nope:1").is_err());
        assert!(Filter::parse("page").is_err());
        assert!(Filter::parse("prop.:x").is_err());
        let json = serde_json::to_string(&f).expect("json");
        assert_eq!(json, r#""prop.plan:pro:max""#);
        assert_eq!(serde_json::from_str::<Filter>(&json).expect("parse"), f);
    }

    #[test]
    fn matching() {
        let blog = Filter::is(Dimension::Page, "/blog/*");
        assert!(blog.accepts(Some("/blog/")));
        assert!(blog.accepts(Some("/blog/a/b")));
        assert!(!blog.accepts(Some("/blog")));
        assert!(!blog.accepts(None));
        let not_blog = Filter::is_not(Dimension::Page, "/blog/*");
        assert!(not_blog.accepts(Some("/")));
        assert!(not_blog.accepts(None));
        // No wildcards outside page-like fields.
        let star = Filter::is(Dimension::Referrer, "*");
        assert!(!star.accepts(Some("google.com")));
        assert!(star.accepts(Some("*")));
        assert!(wildcard_match("*/pricing", "/de/pricing"));
        assert!(wildcard_match("/a*b*c", "/aXbYbZc"));
        assert!(!wildcard_match("/a*b*c", "/aXbYbZ"));
        assert!(wildcard_match("**", ""));
    }
}
