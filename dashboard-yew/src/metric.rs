//! The six figures of the top cards (and of the chart): how each is read from a summary, a
//! time-series point or the live "today" totals, how it is written, and which way is good.
//! Pure, so the rules are unit-tested on the host.

use protocol::live::Totals;
use protocol::stats::{Point, Summary};

use crate::shape::{format_count, format_duration, format_percent};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Metric {
    #[default]
    Visitors,
    Pageviews,
    Visits,
    BounceRate,
    VisitDuration,
    ViewsPerVisit,
}

impl Metric {
    pub const ALL: [Metric; 6] = [
        Metric::Visitors,
        Metric::Pageviews,
        Metric::Visits,
        Metric::BounceRate,
        Metric::VisitDuration,
        Metric::ViewsPerVisit,
    ];

    /// Stable name: element ids (`summary-bounce_rate`), the URL (`metric=`), the API's CSV
    /// columns.
    pub fn key(self) -> &'static str {
        match self {
            Metric::Visitors => "visitors",
            Metric::Pageviews => "pageviews",
            Metric::Visits => "visits",
            Metric::BounceRate => "bounce_rate",
            Metric::VisitDuration => "visit_duration",
            Metric::ViewsPerVisit => "views_per_visit",
        }
    }

    pub fn from_key(key: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.key() == key)
    }

    pub fn label(self) -> &'static str {
        match self {
            Metric::Visitors => "Unique visitors",
            Metric::Pageviews => "Page views",
            Metric::Visits => "Visits",
            Metric::BounceRate => "Bounce rate",
            Metric::VisitDuration => "Visit duration",
            Metric::ViewsPerVisit => "Views per visit",
        }
    }

    /// A bounce rate going down is good news; everything else is better higher.
    pub fn lower_is_better(self) -> bool {
        self == Metric::BounceRate
    }

    /// Counts sum over time; rates and means do not (a chart's legend shows no total).
    pub fn is_count(self) -> bool {
        matches!(self, Metric::Visitors | Metric::Pageviews | Metric::Visits)
    }

    pub fn of_summary(self, s: &Summary) -> f64 {
        match self {
            Metric::Visitors => s.visitors as f64,
            Metric::Pageviews => s.pageviews as f64,
            Metric::Visits => s.visits as f64,
            Metric::BounceRate => s.bounce_rate,
            Metric::VisitDuration => s.visit_duration as f64,
            Metric::ViewsPerVisit => s.views_per_visit,
        }
    }

    pub fn of_point(self, p: &Point) -> f64 {
        match self {
            Metric::Visitors => p.visitors as f64,
            Metric::Pageviews => p.pageviews as f64,
            Metric::Visits => p.visits as f64,
            Metric::BounceRate => p.bounce_rate,
            Metric::VisitDuration => p.visit_duration as f64,
            Metric::ViewsPerVisit => p.views_per_visit,
        }
    }

    /// The live view's "today" figure.
    pub fn of_today(self, t: &Totals) -> f64 {
        match self {
            Metric::Visitors => t.visitors as f64,
            Metric::Pageviews => t.pageviews as f64,
            Metric::Visits => t.visits as f64,
            Metric::BounceRate => t.bounce_rate,
            Metric::VisitDuration => t.visit_duration as f64,
            Metric::ViewsPerVisit => t.views_per_visit,
        }
    }

    /// For the card: "1,234", "12.3k", "42%", "1m 05s", "2.37".
    pub fn format(self, v: f64) -> String {
        match self {
            Metric::Visitors | Metric::Pageviews | Metric::Visits => {
                format_count(v.max(0.0) as u64)
            }
            Metric::BounceRate => format_percent(v),
            Metric::VisitDuration => format_duration(v.max(0.0).round() as u64),
            Metric::ViewsPerVisit => format!("{v:.2}"),
        }
    }

    /// For an axis tick: like [`Metric::format`], empty for a fractional tick of a count.
    pub fn format_tick(self, v: f64) -> String {
        match self {
            Metric::ViewsPerVisit => {
                if v.fract() == 0.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.1}")
                }
            }
            Metric::BounceRate if v.fract() == 0.0 => format!("{v:.0}%"),
            Metric::BounceRate => format!("{v:.1}%"),
            Metric::VisitDuration => format_duration(v.max(0.0).round() as u64),
            _ => crate::shape::format_tick(v),
        }
    }

    /// The exact value for `data-value` (tests and tooltips read it): integers as integers.
    pub fn exact(self, v: f64) -> String {
        if self.is_count() || self == Metric::VisitDuration {
            format!("{}", v.max(0.0).round() as u64)
        } else {
            format!("{v}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_read_the_right_fields() {
        for m in Metric::ALL {
            assert_eq!(Metric::from_key(m.key()), Some(m));
        }
        assert_eq!(Metric::from_key("sessions"), None);
        let s = Summary {
            visitors: 7,
            pageviews: 12,
            visits: 8,
            bounce_rate: 37.5,
            visit_duration: 65,
            views_per_visit: 1.5,
            ..Summary::default()
        };
        let got: Vec<f64> = Metric::ALL.iter().map(|m| m.of_summary(&s)).collect();
        assert_eq!(got, [7.0, 12.0, 8.0, 37.5, 65.0, 1.5]);
        let p = Point {
            visitors: 1,
            pageviews: 2,
            visits: 3,
            bounce_rate: 4.5,
            visit_duration: 6,
            views_per_visit: 7.25,
            ..Point::default()
        };
        let got: Vec<f64> = Metric::ALL.iter().map(|m| m.of_point(&p)).collect();
        assert_eq!(got, [1.0, 2.0, 3.0, 4.5, 6.0, 7.25]);
        let t = Totals {
            visitors: 3,
            pageviews: 5,
            visits: 4,
            bounce_rate: 25.0,
            visit_duration: 30,
            views_per_visit: 1.25,
            ..Totals::default()
        };
        let got: Vec<f64> = Metric::ALL.iter().map(|m| m.of_today(&t)).collect();
        assert_eq!(got, [3.0, 5.0, 4.0, 25.0, 30.0, 1.25]);
    }

    #[test]
    fn formats() {
        assert_eq!(Metric::Visitors.format(12_345.0), "12.3k");
        assert_eq!(Metric::BounceRate.format(42.6), "43%");
        assert_eq!(Metric::BounceRate.format(4.3), "4.3%");
        assert_eq!(Metric::VisitDuration.format(65.0), "1m 05s");
        assert_eq!(Metric::ViewsPerVisit.format(2.0), "2.00");
        assert_eq!(Metric::Visits.exact(3.0), "3");
        assert_eq!(Metric::VisitDuration.exact(65.0), "65");
        assert_eq!(Metric::BounceRate.exact(33.3), "33.3");
        assert_eq!(Metric::ViewsPerVisit.exact(1.67), "1.67");
        assert_eq!(Metric::ViewsPerVisit.format_tick(2.5), "2.5");
        assert_eq!(Metric::BounceRate.format_tick(50.0), "50%");
        assert_eq!(Metric::BounceRate.format_tick(0.5), "0.5%");
        assert_eq!(Metric::Pageviews.format_tick(2.5), "");
        assert!(Metric::BounceRate.lower_is_better());
        assert!(!Metric::VisitDuration.lower_is_better());
    }
}
