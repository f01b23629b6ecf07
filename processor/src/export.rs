//! CSV of the dashboard's panels (`format=csv`): the same answers as the JSON, flattened.
//! Fields are quoted when they hold a comma, quote or line break (RFC 4180), and a leading
//! `= + - @` is defused with a `'`, so a spreadsheet never runs a path or a referrer as a
//! formula.

use std::fmt::Write;

use protocol::stats::{Breakdown, GoalKind, GoalStats, Timeseries};

fn field(out: &mut String, value: &str) {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&value);
    }
}

/// `value,count`, largest first.
pub fn breakdown_csv(b: &Breakdown) -> String {
    let mut out = String::from("value,count\r\n");
    for row in &b.rows {
        field(&mut out, &row.value);
        let _ = write!(out, ",{}\r\n", row.count);
    }
    out
}

/// One line per point.
pub fn timeseries_csv(t: &Timeseries) -> String {
    let mut out = String::from(
        "time,ts,pageviews,visitors,sessions,events,visits,bounce_rate,visit_duration,views_per_visit\r\n",
    );
    for p in &t.points {
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{:.1},{},{:.2}\r\n",
            p.time,
            p.ts,
            p.pageviews,
            p.visitors,
            p.sessions,
            p.events,
            p.visits,
            p.bounce_rate,
            p.visit_duration,
            p.views_per_visit
        );
    }
    out
}

/// One line per goal.
pub fn goals_csv(g: &GoalStats) -> String {
    let mut out = String::from("kind,value,visitors,conversions,conversion_rate\r\n");
    for r in &g.goals {
        out.push_str(match r.goal.kind {
            GoalKind::Event => "event,",
            GoalKind::Page => "page,",
        });
        field(&mut out, &r.goal.value);
        let _ = write!(
            out,
            ",{},{},{:.1}\r\n",
            r.visitors, r.conversions, r.conversion_rate
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use protocol::stats::{Dimension, Row};

    use super::*;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        let b = Breakdown {
            site: "s".into(),
            from: String::new(),
            to: String::new(),
            dimension: Dimension::Page.into(),
            total: 3,
            distinct: 3,
            rows: vec![
                Row {
                    value: "/a,b".into(),
                    count: 1,
                },
                Row {
                    value: "/say \"hi\"".into(),
                    count: 1,
                },
                Row {
                    value: "=cmd()".into(),
                    count: 1,
                },
            ],
            filters: vec![],
        };
        assert_eq!(
            breakdown_csv(&b),
            "value,count\r\n\"/a,b\",1\r\n\"/say \"\"hi\"\"\",1\r\n'=cmd(),1\r\n"
        );
    }
}
