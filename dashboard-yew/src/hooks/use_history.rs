//! Loads the history view's data whenever what it shows changes (site, range, filters,
//! comparison, property, goals) or the view is shown: the summary, the time series, every
//! breakdown, the property breakdown and the goals, in parallel. Each answer carries the
//! request number, so answers to a superseded request are dropped by the reducer.

use protocol::stats::{Compare, Field, Filter};
use serde::de::DeserializeOwned;
use yew::prelude::*;

use crate::api::{self, ApiError, Interval, Scope};
use crate::state::{Action, Range, State};

/// Everything a history request depends on; a change of any part asks again.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    pub token: String,
    pub site: String,
    pub range: Range,
    pub filters: Vec<Filter>,
    pub compare: Option<Compare>,
    pub prop: Option<String>,
    /// Bumped after a goal change or by the refresh button.
    pub history_rev: u32,
}

impl HistoryQuery {
    /// The query of the history view, if it is shown.
    pub fn of(state: &State) -> Option<HistoryQuery> {
        Some(HistoryQuery {
            token: state.token.clone()?,
            site: state.site.clone()?,
            range: state.range.clone(),
            filters: state.filters.clone(),
            compare: state.compare,
            prop: state.prop.clone(),
            history_rev: state.history_rev,
        })
        .filter(|_| state.view == crate::state::View::History)
    }
}

#[hook]
pub fn use_history(query: Option<HistoryQuery>, dispatch: UseReducerDispatcher<State>) {
    let counter = use_mut_ref(|| 0u32);
    use_effect_with(query, move |query| {
        if let Some(q) = query.clone() {
            let request = {
                let mut c = counter.borrow_mut();
                *c = c.wrapping_add(1);
                *c
            };
            let tz = super::tz_offset_min();
            let span = q.range.span(super::now_ms(), tz);
            // Summary, series, goals, every table, and the property table if one is chosen.
            let parts = 3 + api::TABLES.len() as u32 + u32::from(q.prop.is_some());
            dispatch.dispatch(Action::HistoryRequested {
                request,
                span,
                parts,
            });
            if let Some(span) = span {
                load(q, span, request, tz, dispatch);
            }
        }
    });
}

fn load(
    q: HistoryQuery,
    span: api::Span,
    request: u32,
    tz: i32,
    dispatch: UseReducerDispatcher<State>,
) {
    let scope = Scope {
        site: &q.site,
        span,
        filters: &q.filters,
    };
    let interval = Interval::default_for(span.to - span.from);
    let summary = api::summary_path(scope, q.compare);
    let series = api::timeseries_path(scope, interval, tz, q.compare, false);
    let goals = api::goal_stats_path(scope, false);
    let tables: Vec<(api::Dimension, String)> = api::TABLES
        .iter()
        .map(|d| {
            (
                *d,
                api::breakdown_path(scope, &(*d).into(), api::BREAKDOWN_LIMIT, false),
            )
        })
        .collect();
    let prop = q
        .prop
        .as_ref()
        .map(|p| api::breakdown_path(scope, &Field::Prop(p.clone()), api::BREAKDOWN_LIMIT, false));

    let get = |path: String| (q.token.clone(), path, dispatch.clone());
    fetch(get(summary), move |r| Action::Summary(request, r));
    fetch(get(series), move |r| Action::Series(request, r));
    fetch(get(goals), move |r| Action::Goals(request, r));
    for (dim, path) in tables {
        fetch(get(path), move |r| Action::Breakdown(request, dim, r));
    }
    if let Some(path) = prop {
        fetch(get(path), move |r| Action::PropBreakdown(request, r));
    }
}

/// `GET path` in a task; the answer becomes an action. A refused token ends the session (the
/// admin token was rotated, or the share link revoked).
fn fetch<T: DeserializeOwned + 'static>(
    (token, path, dispatch): (String, String, UseReducerDispatcher<State>),
    action: impl FnOnce(Result<T, ApiError>) -> Action + 'static,
) {
    yew::platform::spawn_local(async move {
        let r = api::get::<T>(&token, &path).await;
        if r.as_ref().err() == Some(&ApiError::Unauthorized) {
            dispatch.dispatch(Action::LoggedOut(Some(
                super::use_sites::TOKEN_REFUSED.into(),
            )));
            return;
        }
        dispatch.dispatch(action(r));
    });
}
