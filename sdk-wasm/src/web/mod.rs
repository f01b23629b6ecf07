//! The browser edge: the `#[wasm_bindgen]` exports the JS shell (`npm/src/core.js`) calls.
//!
//! The shell listens to DOM events, reads the few page facts they carry (URL, title,
//! clicked element) and performs the requests; every decision is made here and in the
//! core.
//!
//! The boundary is shaped by the download budget (12 KB gzip for JS + wasm), measured:
//! - Plain strings and numbers, no web-sys/js-sys: reading JS objects from Rust cost more
//!   download than the whole tracker logic (24 KB gzip of wasm with web-sys DOM reads).
//! - One export, [`call`], with an operation code ([`op`]), one string and two numbers,
//!   returning one string: every export costs its own ABI shim in the wasm and wrapper in
//!   the JS glue, and each `&str` parameter ~140 bytes more. Calls with several strings
//!   take one *message* whose fields are separated by U+001F (the shell strips that
//!   character from values; see [`fields`]). Results are strings, empty for "nothing".
//!
//! The functions behind the operations are plain Rust functions (tested in `tests.rs`).
//!
//! Each export works on the one global [`Tracker`]; after each call the session and queue
//! are written back to storage if they changed. None of them can throw: before `start`, or
//! if storage refuses, they return a default and count the error in `stats()`.

mod storage;

use alloc::string::String;
use core::cell::{Cell, RefCell};

use wasm_bindgen::prelude::*;

use crate::autocapture::Clicked;
use crate::clock::Clock;
use crate::config::Config;
use crate::event::{Context, PropValue, Props};
use crate::ignore::{self, Signals};
use crate::text;
use crate::tracker::Tracker;
use storage::Area;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = Date)]
    fn now() -> f64;
    #[wasm_bindgen(js_namespace = Math)]
    fn random() -> f64;
}

/// `Date.now()`.
struct DateClock;

impl Clock for DateClock {
    fn now_ms(&self) -> u64 {
        now() as u64
    }
}

/// Separates the fields of a message (U+001F, the ASCII unit separator).
pub const FIELD: u8 = 0x1f;

/// Privacy signals passed to [`start`] as bits.
pub const SIGNAL_DNT: u32 = 1;
pub const SIGNAL_GPC: u32 = 2;

/// Kinds of [`prop`] values.
pub const PROP_STR: u32 = 0;
pub const PROP_NUM: u32 = 1;
pub const PROP_BOOL: u32 = 2;

struct Global {
    /// Set by [`configure`], consumed by [`start`].
    config: RefCell<Option<Config>>,
    tracker: RefCell<Option<Tracker<DateClock>>>,
    /// Props staged by [`prop`] for the next [`track`] or [`click`].
    props: RefCell<Props>,
    /// Storage writes the browser refused, and re-entrant calls.
    errors: Cell<u64>,
}

// SAFETY: wasm32-unknown-unknown without the `atomics` target feature has exactly one
// thread, so the cells are never touched concurrently. A re-entrant call (the shell never
// calls in from inside a call) would find a RefCell borrowed and do nothing.
unsafe impl Sync for Global {}

static GLOBAL: Global = Global {
    config: RefCell::new(None),
    tracker: RefCell::new(None),
    props: RefCell::new(Props::new()),
    errors: Cell::new(0),
};

fn error() {
    GLOBAL.errors.set(GLOBAL.errors.get() + 1);
}

/// The `N` fields of a message; missing ones are empty.
fn fields<const N: usize>(msg: &str) -> [&str; N] {
    let mut out = [""; N];
    for (slot, field) in out.iter_mut().zip(text::split(msg, FIELD)) {
        *slot = field;
    }
    out
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn take_props() -> Props {
    GLOBAL
        .props
        .try_borrow_mut()
        .map(|mut p| core::mem::take(&mut *p))
        .unwrap_or_default()
}

/// Runs `f` on the tracker, then persists what changed. Before `start` (or re-entered,
/// which the shell never does) it returns the default.
fn with<R: Default>(f: impl FnOnce(&mut Tracker<DateClock>) -> R) -> R {
    let Ok(mut slot) = GLOBAL.tracker.try_borrow_mut() else {
        error();
        return R::default();
    };
    let Some(t) = slot.as_mut() else {
        return R::default();
    };
    let r = f(t);
    persist(t);
    r
}

/// Writes the session and queue back if they changed. Out of line: `with` is instantiated
/// once per export.
#[inline(never)]
fn persist(t: &mut Tracker<DateClock>) {
    let (session, queue) = (t.take_session_write(), t.take_queue_write());
    let site = &t.config().site;
    if let Some(s) = session {
        if !storage::set(Area::Session, &storage::key(storage::SESSION_KEY, site), &s) {
            error();
        }
    }
    if let Some(q) = queue {
        if !storage::set(Area::Local, &storage::key(storage::QUEUE_KEY, site), &q) {
            error();
        }
    }
}

/// Operation codes of [`call`]; `npm/src/core.js` mirrors them.
pub mod op {
    pub const CONFIGURE: u32 = 0;
    pub const START: u32 = 1;
    pub const PAGE: u32 = 2;
    pub const PROP: u32 = 3;
    pub const TRACK: u32 = 4;
    pub const CLICK: u32 = 5;
    pub const IDENTIFY: u32 = 6;
    pub const CONSENT: u32 = 7;
    pub const TAKE: u32 = 8;
    pub const DONE: u32 = 9;
    pub const WAIT: u32 = 10;
    pub const LEAVE: u32 = 11;
    pub const DRAIN: u32 = 12;
    pub const DRAINED: u32 = 13;
    pub const STATS: u32 = 14;
}

/// The one export. `msg`, `a` and `b` are the operation's arguments, as documented on
/// the function it calls; the result is that function's, as a string (`"1"`/`""` for
/// booleans, decimal for numbers, `""` for nothing).
#[wasm_bindgen]
pub fn call(op: u32, msg: &str, a: u32, b: u32) -> String {
    let flag = |yes: bool| String::from(if yes { "1" } else { "" });
    match op {
        op::CONFIGURE => return configure(msg, a),
        op::START => return flag(start(msg, a)),
        op::PAGE => page(msg, a != 0),
        op::PROP => prop(msg, a),
        op::TRACK => return flag(track(msg)),
        op::CLICK => click(msg),
        op::IDENTIFY => return flag(identify(msg)),
        op::CONSENT => return flag(consent(a != 0)),
        op::TAKE => return take(),
        op::DONE => done(a as u16, b),
        op::WAIT => {
            let mut out = String::new();
            if let Some(ms) = wait() {
                crate::json::write_u64(&mut out, ms);
            }
            return out;
        }
        op::LEAVE => leave(),
        op::DRAIN => return drain(),
        op::DRAINED => drained(a != 0),
        op::STATS => return stats(),
        _ => {}
    }
    String::new()
}

/// Step 1 of 2: the site's options, `site␟api␟batch size␟flush interval ms␟max queue`
/// (empty or 0 numbers mean the default); `bits` are [`crate::config::flags`]. Returns
/// the URL batches go to.
pub fn configure(msg: &str, bits: u32) -> String {
    let [site, api, batch_size, flush_ms, max_queue] = fields(msg);
    let num = |s: &str| {
        crate::json::parse_u64(s.as_bytes()).map_or(0, |n| n.min(u64::from(u32::MAX)) as u32)
    };
    let (batch_size, flush_ms, max_queue) = (num(batch_size), num(flush_ms), num(max_queue));
    let cfg = Config::from_flags(site, api, bits, batch_size, flush_ms, max_queue);
    let endpoint = cfg.endpoint.clone();
    if let Ok(mut c) = GLOBAL.config.try_borrow_mut() {
        *c = Some(cfg);
    }
    endpoint
}

/// Step 2 of 2: the browser's facts, `screen␟language␟timeZone␟hostname␟protocol` (empty
/// when unknown); `signals` has [`SIGNAL_DNT`] and [`SIGNAL_GPC`]. Returns false when this
/// page is not tracked (ignore rules) or already started; the shell then installs no
/// listeners.
pub fn start(msg: &str, signals: u32) -> bool {
    let [screen, lang, timezone, hostname, protocol] = fields(msg);
    let (Ok(mut slot), Ok(mut config)) = (
        GLOBAL.tracker.try_borrow_mut(),
        GLOBAL.config.try_borrow_mut(),
    ) else {
        return false;
    };
    let Some(cfg) = config.take().filter(|_| slot.is_none()) else {
        return false;
    };
    let verdict = ignore::check(
        &cfg,
        &Signals {
            do_not_track: signals & SIGNAL_DNT != 0,
            global_privacy_control: signals & SIGNAL_GPC != 0,
            hostname,
            protocol,
            opted_out: storage::get(Area::Local, storage::OPT_OUT_KEY).as_deref() == Some("true"),
        },
    );
    // Math.random is enough: ids must be unique, not secret (see `ids`).
    let seed = ((random() * 9_007_199_254_740_992.0) as u64)
        ^ (((random() * 9_007_199_254_740_992.0) as u64) << 11)
        ^ DateClock.now_ms();
    let owned = |s: &str| non_empty(s).map(String::from);
    let ctx = Context::new(owned(screen), owned(lang), owned(timezone));
    let mut t = Tracker::new(cfg, ctx, DateClock, seed);
    match verdict {
        Some(reason) => t.ignore(reason),
        None => {
            let site = &t.config().site;
            let session = storage::get(Area::Session, &storage::key(storage::SESSION_KEY, site));
            let queue = storage::get(Area::Local, &storage::key(storage::QUEUE_KEY, site));
            t.restore(session.as_deref(), queue.as_deref());
        }
    }
    // `replace` + `forget` rather than `*slot = Some(t)`: the slot is known to be empty,
    // and this keeps the never-needed drop code of a whole tracker out of the download.
    core::mem::forget(slot.replace(t));
    verdict.is_none()
}

/// Load and every single-page-app navigation, `href␟title␟referrer`: the page is now
/// `href`; a page view is recorded if automatic page views are on and the URL changed.
/// `restored`: back from the back/forward cache, the same URL counts again.
pub fn page(msg: &str, restored: bool) {
    let [href, title, referrer] = fields(msg);
    with(|t| {
        if restored {
            t.restored();
        }
        t.set_url(href);
        if t.config().auto_pageviews {
            t.page_view(title, referrer);
        }
    })
}

/// Stages a prop for the next [`track`] or [`click`], `key␟value`: a string
/// ([`PROP_STR`]), a number as JS `String(n)` ([`PROP_NUM`]; non-finite ones are dropped)
/// or `true`/`false` ([`PROP_BOOL`]).
pub fn prop(msg: &str, kind: u32) {
    let [key, value] = fields(msg);
    let value = match kind {
        PROP_NUM => PropValue::Num(value),
        PROP_BOOL => PropValue::Bool(value == "true"),
        _ => PropValue::Str(value),
    };
    if let Ok(mut p) = GLOBAL.props.try_borrow_mut() {
        p.insert(key, value);
    }
}

/// `track(name, props)` with the staged props. Returns whether it was recorded.
pub fn track(name: &str) -> bool {
    let props = take_props();
    with(|t| t.track(name, &props))
}

/// A click on a link, button or `data-footfall-event` element, with the staged
/// `data-footfall-prop-*` props:
/// `tag␟text␟id␟data-footfall-event␟href␟link host␟link protocol` (the link fields from
/// `a.href`, `a.host`, `a.protocol`; empty for other elements).
pub fn click(msg: &str) {
    let [tag, text, id, custom_event, href, link_host, link_protocol] = fields(msg);
    let props = take_props();
    let clicked = Clicked {
        tag,
        text,
        id,
        href: non_empty(href),
        link_host,
        link_protocol,
        custom_event: non_empty(custom_event),
    };
    with(|t| t.click(&clicked, &props))
}

/// `identify(userId)`; `""` forgets it.
pub fn identify(user_id: &str) -> bool {
    with(|t| t.identify(non_empty(user_id)))
}

/// `consent(granted)`; returns whether recording is on.
pub fn consent(granted: bool) -> bool {
    with(|t| t.consent(granted))
}

/// The next request body to `fetch` if one is due, else `""`. Answer with [`done`].
pub fn take() -> String {
    with(|t| t.next_batch()).unwrap_or_default()
}

/// The status (0: network error) and `Retry-After` seconds of the last [`take`].
pub fn done(status: u16, retry_after_s: u32) {
    with(|t| t.delivered(status, retry_after_s))
}

/// Milliseconds until [`take`] may have something; `None` for "nothing to wait for".
pub fn wait() -> Option<u64> {
    with(|t| t.wake_in())
}

/// `pagehide`: records `session_end` unless the visitor is following a link of the site.
pub fn leave() {
    with(|t| t.leave())
}

/// Page hidden or unloading: the next body for `sendBeacon`, due or not, else `""`.
/// Answer with [`drained`].
pub fn drain() -> String {
    with(|t| t.drain()).unwrap_or_default()
}

/// Whether the browser took the beacon from [`drain`].
pub fn drained(ok: bool) {
    with(|t| t.beaconed(ok))
}

/// Counters as JSON: `{"queued":N,"sent":N,"dropped":N,...}`.
pub fn stats() -> String {
    let errors = GLOBAL.errors.get();
    with(|t| t.stats_json(errors))
}

#[cfg(test)]
mod tests;
