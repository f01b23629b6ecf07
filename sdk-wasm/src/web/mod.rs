//! The browser edge: the wasm's exports, which the JS shell (`npm/src/core.js`, through
//! `npm/src/load.js`) calls, and its three imports.
//!
//! The shell listens to DOM events, reads the few page facts they carry (URL, title,
//! clicked element) and performs the requests; every decision is made here and in the
//! core.
//!
//! The boundary is shaped by the download budget (10 KB brotli for JS + wasm), measured:
//! - Plain strings and numbers, no web-sys/js-sys: reading JS objects from Rust cost more
//!   download than the whole tracker logic (24 KB gzip of wasm with web-sys DOM reads).
//! - No wasm-bindgen in the shipped wasm: its generated glue was ~700 bytes brotli of the
//!   script (string passing for every case, externref table, a decoder workaround) and its
//!   shims ~300 bytes of wasm. The ABI is small enough to write by hand (`abi`): a buffer
//!   each way and numbers. The browser tests (`tests.rs`, feature `std`) link the
//!   same imports through wasm-bindgen instead, because its test harness cannot supply
//!   plain wasm imports; npm/test runs the shipped wiring end to end.
//! - One operation, [`call`], with an operation code ([`op`]), one string and two numbers,
//!   returning one string. Calls with several strings take one *message* whose fields are
//!   separated by U+001F (the shell strips that character from values; see [`fields`]).
//!   Results are strings, empty for "nothing".
//!
//! The functions behind the operations are plain Rust functions (tested in `tests.rs`).
//!
//! Each export works on the one global [`Tracker`]; after each call the session and queue
//! are written back to storage if they changed. None of them can throw: before `start`, or
//! if storage refuses, they return a default and count the error in `stats()`.

mod abi;
mod storage;

use alloc::string::String;
use core::cell::{Cell, RefCell};

use abi::{now, random};

use crate::autocapture::Clicked;
use crate::clock::Clock;
use crate::config::Config;
use crate::event::{Context, PropValue, Props};
use crate::ignore::{self, Signals};
use crate::text;
use crate::tracker::Tracker;
use storage::Area;

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
/// `localStorage.footfall_ignore == "true"`: this browser opted out (a site owner
/// excluding their own visits, the switch Plausible documents).
pub const SIGNAL_OPT_OUT: u32 = 4;

/// Kinds of prop values in TRACK and CLICK messages.
pub const PROP_STR: &str = "0";
pub const PROP_NUM: &str = "1";
pub const PROP_BOOL: &str = "2";

struct Global {
    tracker: RefCell<Option<Tracker<DateClock>>>,
    /// Storage writes the browser refused, and re-entrant calls.
    errors: Cell<u64>,
    /// The message of the next call and the result of the last one (see `abi`).
    input: RefCell<alloc::vec::Vec<u8>>,
    output: RefCell<String>,
}

// SAFETY: wasm32-unknown-unknown without the `atomics` target feature has exactly one
// thread, so the cells are never touched concurrently. A re-entrant call (the shell never
// calls in from inside a call) would find a RefCell borrowed and do nothing.
#[allow(unsafe_code)]
unsafe impl Sync for Global {}

static GLOBAL: Global = Global {
    tracker: RefCell::new(None),
    errors: Cell::new(0),
    input: RefCell::new(alloc::vec::Vec::new()),
    output: RefCell::new(String::new()),
};

fn error() {
    GLOBAL.errors.set(GLOBAL.errors.get() + 1);
}

/// The first `N` fields of a message (missing ones are empty) and the rest of it.
fn fields<const N: usize>(mut msg: &str) -> ([&str; N], &str) {
    let mut out = [""; N];
    for slot in &mut out {
        let (field, rest) = text::split_once(msg, FIELD).unwrap_or((msg, ""));
        *slot = field;
        msg = rest;
    }
    (out, msg)
}

/// Props from `key␟kind␟value` triples: a string ([`PROP_STR`]), a number as JS
/// `String(n)` ([`PROP_NUM`]; non-finite ones are dropped) or `true`/`false`
/// ([`PROP_BOOL`]). Invalid ones are skipped (see [`Props::insert`]).
fn props(mut msg: &str) -> Props {
    let mut props = Props::new();
    while !msg.is_empty() {
        let ([key, kind, value], rest) = fields(msg);
        msg = rest;
        let value = match kind {
            PROP_NUM => PropValue::Num(value),
            PROP_BOOL => PropValue::Bool(value == "true"),
            PROP_STR => PropValue::Str(value),
            _ => continue,
        };
        props.insert(key, value);
    }
    props
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
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
        if !storage::set(Area::Session, site, &s) {
            error();
        }
    }
    if let Some(q) = queue {
        if !storage::set(Area::Local, site, &q) {
            error();
        }
    }
}

/// Operation codes of [`call`] and their arguments; `npm/src/core.js` mirrors them.
/// Messages are U+001F-separated fields.
pub mod op {
    /// Set up (see [`super::start`]): site, options and browser facts, `a` = flags,
    /// `b` = signals → tracked?
    pub const START: u32 = 1;
    /// Load or navigation: `href␟title␟referrer`, `a` = restored from bfcache.
    pub const PAGE: u32 = 2;
    /// `name` then props as `key␟kind␟value` triples → recorded?
    pub const TRACK: u32 = 4;
    /// `tag␟text␟id␟data-footfall-event␟href␟link host␟link protocol` then the
    /// `data-footfall-prop-*` props as triples.
    pub const CLICK: u32 = 5;
    /// `userId` (`""` clears) → accepted?
    pub const IDENTIFY: u32 = 6;
    /// `a` = granted → recording?
    pub const CONSENT: u32 = 7;
    /// → the next body to `fetch` now, or `""`.
    pub const TAKE: u32 = 8;
    /// Answer to TAKE: `a` = HTTP status (0: network error), `b` = Retry-After seconds.
    pub const DONE: u32 = 9;
    /// → milliseconds until TAKE may have something, or `""`.
    pub const WAIT: u32 = 10;
    /// `pagehide`: session_end unless following a link of the site.
    pub const LEAVE: u32 = 11;
    /// Page hidden or unloading → the next body for `sendBeacon`, or `""`.
    pub const DRAIN: u32 = 12;
    /// Answer to DRAIN: `a` = the browser took the beacon.
    pub const DRAINED: u32 = 13;
    /// → counters, comma-separated (see `tracker::STATS_FIELDS`).
    pub const STATS: u32 = 14;
}

/// Every operation (the export `call` in `abi` passes the message in and the result out).
/// `msg`, `a` and `b` are the operation's arguments, as documented on its constant in
/// [`op`]; the result is a string (`"1"`/`""` for yes/no, decimal for numbers, `""` for
/// nothing).
pub fn call(op: u32, msg: &str, a: u32, b: u32) -> String {
    match op {
        op::START => start(msg, a, b),
        _ => with(|t| on_tracker(t, op, msg, a, b)),
    }
}

fn flag(yes: bool) -> String {
    String::from(if yes { "1" } else { "" })
}

/// The operations on the started tracker, under one borrow (one persistence pass).
fn on_tracker(t: &mut Tracker<DateClock>, op: u32, msg: &str, a: u32, b: u32) -> String {
    match op {
        op::PAGE => {
            let ([href, title, referrer], _) = fields(msg);
            if a != 0 {
                t.restored();
            }
            t.set_url(href);
            if t.config().auto_pageviews {
                t.page_view(title, referrer);
            }
        }
        op::TRACK => {
            let ([name], rest) = fields(msg);
            return flag(t.track(name, &props(rest)));
        }
        op::CLICK => {
            let ([tag, text, id, custom_event, href, link_host, link_protocol], rest) = fields(msg);
            let clicked = Clicked {
                tag,
                text,
                id,
                href: non_empty(href),
                link_host,
                link_protocol,
                custom_event: non_empty(custom_event),
            };
            t.click(&clicked, &props(rest));
        }
        op::IDENTIFY => return flag(t.identify(non_empty(msg))),
        op::CONSENT => return flag(t.consent(a != 0)),
        op::TAKE => return t.next_batch().unwrap_or_default(),
        op::DONE => t.delivered(a as u16, b),
        op::WAIT => {
            let mut out = String::new();
            if let Some(ms) = t.wake_in() {
                crate::json::write_u64(&mut out, ms);
            }
            return out;
        }
        op::LEAVE => t.leave(),
        op::DRAIN => return t.drain().unwrap_or_default(),
        op::DRAINED => t.beaconed(a != 0),
        op::STATS => return t.stats_csv(GLOBAL.errors.get()),
        _ => {}
    }
    String::new()
}

/// Sets the tracker up: `site␟batch size␟flush ms␟max queue␟screen␟language␟time
/// zone␟hostname␟protocol␟stored session␟stored queue` (empty for defaults and unknowns;
/// the stored values are what `persist` wrote, read back by the shell; see `storage`),
/// `bits` the
/// [`crate::config::flags`], `signals` [`SIGNAL_DNT`] | [`SIGNAL_GPC`] |
/// [`SIGNAL_OPT_OUT`]. Returns `"1"`, or `""` when this page is not tracked (ignore rules)
/// or it was already started: the shell then installs no listeners.
pub fn start(msg: &str, bits: u32, signals: u32) -> String {
    let (
        [site, batch_size, flush_ms, max_queue, screen, lang, timezone, hostname, protocol, session, queue],
        _,
    ) = fields(msg);
    let num = |s: &str| {
        crate::json::parse_u64(s.as_bytes()).map_or(0, |n| n.min(u64::from(u32::MAX)) as u32)
    };
    let cfg = Config::from_flags(site, bits, num(batch_size), num(flush_ms), num(max_queue));
    let Ok(mut slot) = GLOBAL.tracker.try_borrow_mut() else {
        return String::new();
    };
    if slot.is_some() {
        return String::new();
    }
    let verdict = ignore::check(
        &cfg,
        &Signals {
            do_not_track: signals & SIGNAL_DNT != 0,
            global_privacy_control: signals & SIGNAL_GPC != 0,
            hostname,
            protocol,
            opted_out: signals & SIGNAL_OPT_OUT != 0,
        },
    );
    // Math.random is enough: ids must be unique, not secret (see `ids`).
    let seed = ((random() * 9_007_199_254_740_992.0) as u64)
        ^ (((random() * 9_007_199_254_740_992.0) as u64) << 11)
        ^ DateClock.now_ms();
    let ctx = Context::new(screen, lang, timezone);
    let mut t = Tracker::new(cfg, ctx, DateClock, seed);
    let endpoint = match verdict {
        Some(reason) => {
            t.ignore(reason);
            String::new()
        }
        None => {
            t.restore(non_empty(session), non_empty(queue));
            String::from("1")
        }
    };
    // `replace` + `forget` rather than `*slot = Some(t)`: the slot is known to be empty,
    // and this keeps the never-needed drop code of a whole tracker out of the download.
    #[allow(clippy::mem_forget)]
    core::mem::forget(slot.replace(t));
    endpoint
}

#[cfg(test)]
mod tests;
