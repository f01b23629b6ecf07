//! Loads the history view's data whenever the site or range changes or the view is shown:
//! the summary, the time series and every breakdown, in parallel. Each answer carries the
//! request number, so answers to a superseded request are dropped by the reducer.

use yew::prelude::*;

use crate::api::{self, Breakdown, Interval, Summary, Timeseries};
use crate::state::{Action, Range, State};

#[hook]
pub fn use_history(
    token: Option<String>,
    site: Option<String>,
    range: Range,
    active: bool,
    dispatch: UseReducerDispatcher<State>,
) {
    let counter = use_mut_ref(|| 0u32);
    use_effect_with(
        (token, site, range, active),
        move |(token, site, range, active)| {
            if let (Some(token), Some(site), true) = (token.clone(), site.clone(), *active) {
                let request = {
                    let mut c = counter.borrow_mut();
                    *c = c.wrapping_add(1);
                    *c
                };
                let span = range.span(super::now_ms(), super::tz_offset_min());
                dispatch.dispatch(Action::HistoryRequested { request, span });
                if let Some(span) = span {
                    load(token, site, span, request, super::tz_offset_min(), dispatch);
                }
            }
        },
    );
}

fn load(
    token: String,
    site: String,
    span: api::Span,
    request: u32,
    tz_offset_min: i32,
    dispatch: UseReducerDispatcher<State>,
) {
    {
        let (token, site, dispatch) = (token.clone(), site.clone(), dispatch.clone());
        yew::platform::spawn_local(async move {
            let r = api::get::<Summary>(&token, &api::summary_path(&site, span)).await;
            if r == Err(api::ApiError::Unauthorized) {
                dispatch.dispatch(Action::LoggedOut(Some(
                    super::use_sites::TOKEN_REFUSED.into(),
                )));
                return;
            }
            dispatch.dispatch(Action::Summary(request, r));
        });
    }
    {
        let (token, site, dispatch) = (token.clone(), site.clone(), dispatch.clone());
        let interval = Interval::default_for(span.to - span.from);
        yew::platform::spawn_local(async move {
            let r = api::get::<Timeseries>(
                &token,
                &api::timeseries_path(&site, span, interval, tz_offset_min),
            )
            .await;
            dispatch.dispatch(Action::Series(request, r));
        });
    }
    for dim in api::TABLES {
        let (token, site, dispatch) = (token.clone(), site.clone(), dispatch.clone());
        yew::platform::spawn_local(async move {
            let r = api::get::<Breakdown>(&token, &api::breakdown_path(&site, span, dim)).await;
            dispatch.dispatch(Action::Breakdown(request, dim, r));
        });
    }
}
