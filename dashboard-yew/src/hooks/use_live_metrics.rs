//! The live feed: one WebSocket per (token, site), reopened with exponential backoff.
//!
//! Each attempt first asks `POST /api/ws-ticket` for a one-time ticket (browsers cannot put
//! the token in a WebSocket header, and tokens never go in URLs), then opens
//! `/ws?site=S&ticket=T`. The server starts every connection with a full snapshot, so a
//! reconnect needs no reconciliation: the snapshot replaces whatever the tab had.
//!
//! When a hidden tab becomes visible again it sends `{"type":"resync"}`: the ticks it got
//! while throttled in the background carry the full state, but the feed may have gaps that
//! only a snapshot fills.
//!
//! Ownership: the effect owns a [`Live`]; the socket's handlers and the retry timer hold
//! clones of it (a cycle on purpose — it keeps the connection alive without a component).
//! [`Live::stop`] breaks the cycle when the token or site changes or the app unmounts.

use std::cell::RefCell;
use std::rc::Rc;

use gloo_timers::callback::Timeout;
use protocol::live::{ClientMessage, ServerMessage};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, MessageEvent, WebSocket};
use yew::prelude::*;

use crate::api::{self, ApiError, Ticket};
use crate::shape::backoff;
use crate::state::{Action, Conn, State};

/// `shared`: the token is a share link's. A refused ticket then only means this server gives
/// share links no live view (yet): keep retrying quietly instead of ending the session; the
/// history's own requests notice a revoked link.
#[hook]
pub fn use_live_metrics(
    token: Option<String>,
    site: Option<String>,
    shared: bool,
    dispatch: UseReducerDispatcher<State>,
) {
    use_effect_with((token, site, shared), move |(token, site, shared)| {
        let live = match (token, site) {
            (Some(token), Some(site)) => {
                Some(Live::start(token.clone(), site.clone(), *shared, dispatch))
            }
            _ => {
                dispatch.dispatch(Action::Conn(Conn::Idle));
                None
            }
        };
        move || {
            if let Some(live) = live {
                live.stop();
            }
        }
    });
}

struct Handlers {
    _message: Closure<dyn FnMut(MessageEvent)>,
    _close: Closure<dyn FnMut(CloseEvent)>,
}

struct Inner {
    token: String,
    site: String,
    shared: bool,
    dispatch: UseReducerDispatcher<State>,
    stopped: bool,
    /// Failed attempts since the last snapshot.
    attempt: u32,
    /// Bumped per socket, so a late event of a replaced socket is ignored.
    generation: u32,
    socket: Option<WebSocket>,
    handlers: Option<Handlers>,
    retry: Option<Timeout>,
    /// The `visibilitychange` listener on the document, removed by `stop`.
    visibility: Option<Closure<dyn FnMut()>>,
}

#[derive(Clone)]
struct Live(Rc<RefCell<Inner>>);

impl Live {
    fn start(
        token: String,
        site: String,
        shared: bool,
        dispatch: UseReducerDispatcher<State>,
    ) -> Live {
        dispatch.dispatch(Action::Conn(Conn::Connecting));
        let live = Live(Rc::new(RefCell::new(Inner {
            token,
            site,
            shared,
            dispatch,
            stopped: false,
            attempt: 0,
            generation: 0,
            socket: None,
            handlers: None,
            retry: None,
            visibility: None,
        })));
        live.watch_visibility();
        live.connect();
        live
    }

    fn watch_visibility(&self) {
        let Some(document) = web_sys::window().and_then(|w| w.document()) else {
            return;
        };
        let this = self.clone();
        let doc = document.clone();
        let listener = Closure::<dyn FnMut()>::new(move || {
            if doc.hidden() {
                return;
            }
            let inner = this.0.borrow();
            if let Some(ws) = inner
                .socket
                .as_ref()
                .filter(|ws| ws.ready_state() == WebSocket::OPEN)
            {
                if let Ok(text) = serde_json::to_string(&ClientMessage::Resync) {
                    // A failed send shows up as a close, which reconnects.
                    let _ = ws.send_with_str(&text);
                }
            }
        });
        if document
            .add_event_listener_with_callback("visibilitychange", listener.as_ref().unchecked_ref())
            .is_ok()
        {
            self.0.borrow_mut().visibility = Some(listener);
        }
    }

    fn stop(&self) {
        let mut inner = self.0.borrow_mut();
        inner.stopped = true;
        inner.retry = None;
        if let Some(ws) = inner.socket.take() {
            ws.set_onmessage(None);
            ws.set_onclose(None);
            // Already closing or closed is fine.
            let _ = ws.close();
        }
        inner.handlers = None;
        if let Some(listener) = inner.visibility.take() {
            if let Some(document) = web_sys::window().and_then(|w| w.document()) {
                let _ = document.remove_event_listener_with_callback(
                    "visibilitychange",
                    listener.as_ref().unchecked_ref(),
                );
            }
        }
    }

    /// Gets a ticket, then opens the socket. Runs as a task, never inside a JS callback.
    fn connect(&self) {
        let this = self.clone();
        yew::platform::spawn_local(async move {
            let (token, shared, dispatch) = {
                let inner = this.0.borrow();
                if inner.stopped {
                    return;
                }
                (inner.token.clone(), inner.shared, inner.dispatch.clone())
            };
            match api::post::<Ticket>(&token, api::TICKET_PATH, None::<&()>).await {
                Ok(t) => this.open(&t.ticket),
                Err(ApiError::Unauthorized) if !shared => {
                    if !this.0.borrow().stopped {
                        dispatch.dispatch(Action::LoggedOut(Some(
                            super::use_sites::TOKEN_REFUSED.into(),
                        )));
                    }
                }
                Err(_) => this.failed(),
            }
        });
    }

    fn open(&self, ticket: &str) {
        let (url, generation) = {
            let mut inner = self.0.borrow_mut();
            if inner.stopped {
                return;
            }
            // The previous socket (closed by now) lets go of its handlers here, outside
            // any of its callbacks.
            if let Some(old) = inner.socket.take() {
                old.set_onmessage(None);
                old.set_onclose(None);
            }
            inner.handlers = None;
            inner.generation = inner.generation.wrapping_add(1);
            (
                api::ws_url(&super::origin(), &inner.site, ticket),
                inner.generation,
            )
        };
        let Ok(ws) = WebSocket::new(&url) else {
            return self.failed();
        };

        let this = self.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let Some(text) = e.data().as_string() else {
                return;
            };
            // An unknown message type is skipped rather than fatal: newer servers may add
            // types; a changed `v` is caught by the reducer.
            let Ok(msg) = serde_json::from_str::<ServerMessage>(&text) else {
                return;
            };
            let dispatch = {
                let mut inner = this.0.borrow_mut();
                if inner.stopped || inner.generation != generation {
                    return;
                }
                if matches!(msg, ServerMessage::Snapshot(_)) {
                    inner.attempt = 0;
                }
                inner.dispatch.clone()
            };
            dispatch.dispatch(Action::Live(Box::new(msg)));
        });
        let this = self.clone();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |_e: CloseEvent| {
            let current = {
                let inner = this.0.borrow();
                !inner.stopped && inner.generation == generation
            };
            if current {
                this.failed();
            }
        });
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));

        let mut inner = self.0.borrow_mut();
        inner.socket = Some(ws);
        inner.handlers = Some(Handlers {
            _message: on_message,
            _close: on_close,
        });
    }

    /// Schedules the next attempt after a failed or lost connection.
    fn failed(&self) {
        let (dispatch, conn) = {
            let mut inner = self.0.borrow_mut();
            if inner.stopped {
                return;
            }
            inner.attempt = inner.attempt.saturating_add(1);
            let delay = backoff(inner.attempt, js_sys::Math::random());
            let delay_ms = u32::try_from(delay.as_millis()).unwrap_or(u32::MAX);
            let this = self.clone();
            // Replacing the old timer here is safe: this never runs inside its callback
            // (`connect` hands over to a task first).
            inner.retry = Some(Timeout::new(delay_ms, move || this.connect()));
            (
                inner.dispatch.clone(),
                Conn::after_failure(inner.attempt, delay_ms),
            )
        };
        dispatch.dispatch(Action::Conn(conn));
    }
}
