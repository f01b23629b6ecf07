//! Footfall's browser tracker core, compiled to `wasm32-unknown-unknown`.
//!
//! It records page views (also for single-page apps), clicks, outbound links, custom events
//! and 30-minute sessions; batches them; and decides when and how they are sent, retrying
//! with backoff and keeping unsent events in localStorage. It must never throw into the
//! host page, never set a cookie, never read anything to fingerprint with, and stay small:
//! every visitor downloads it, so there is no serde, no `core::fmt` and no panic message in
//! the wasm (see `json`), and on wasm32 the crate is `no_std`.
//!
//! The core is sans-IO: [`Tracker`] takes page facts and a [`Clock`] and hands back request
//! bodies, so it is unit-tested on the host with `cargo test`. The `web` module is the only
//! part that touches the browser (a hand-written wasm interface: no wasm-bindgen or web-sys
//! in the download); the JS shell in `npm/src/` wires DOM events, reads the facts they
//! carry and performs the `fetch`/`sendBeacon` calls the core asks for. Decisions stay here.
//!
//! # Layout
//! - `config`: site options from the script tag or `init()`, as flags and numbers.
//! - `event`: one event, its limits (mirroring the collector's) and wire encoding.
//! - `json`: the hand-written JSON writer.
//! - `ids`: event and session ids (time prefix + xorshift64*).
//! - `session`: the 30-minute inactivity session kept in sessionStorage.
//! - `queue`: the bounded queue (drop-oldest, counted), batches, persistence format.
//! - `transport`: what a collector answer means; exponential backoff and `Retry-After`.
//! - `ignore`: privacy and ignore rules (Do-Not-Track / GPC, localhost, opt-out).
//! - `autocapture`: which clicks become `click`, `outbound` or custom events.
//! - `tracker`: the state machine tying them together.
//! - `text`: splitting on one byte without core's panicking pattern searchers.
//! - `clock`: the injected clock ([`ManualClock`] for tests).
//! - `web` (wasm32 only): the operations behind the exports, the interface (`abi`), storage.

#![cfg_attr(all(target_arch = "wasm32", not(test), not(feature = "std")), no_std)]

extern crate alloc;

mod autocapture;
mod clock;
mod config;
mod event;
mod ids;
mod ignore;
mod json;
mod queue;
mod session;
mod text;
mod tracker;
mod transport;
#[cfg(target_arch = "wasm32")]
mod web;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod protocol_agreement;

pub use autocapture::Clicked;
pub use clock::{Clock, ManualClock};
pub use config::{flags, Config};
pub use event::{Context, PropValue, Props};
pub use ignore::{check as ignore_reason, is_local, Reason, Signals};
pub use session::SESSION_TIMEOUT_MS;
pub use tracker::{Stats, Tracker, STATS_FIELDS};

/// A panic in the tracker must not print (no formatting machinery in the download) and
/// must not unwind: it traps, the JS shell catches the trap and switches the tracker off
/// for the rest of the page. The code avoids panicking paths; this is the last line.
#[cfg(all(target_arch = "wasm32", not(test), not(feature = "std")))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

// A free-list allocator of a few hundred bytes instead of std's dlmalloc: the tracker keeps
// a handful of small strings alive, so allocation speed does not matter and size does.
// wasm32-unknown-unknown without the atomics feature runs on one thread only.
#[cfg(all(target_arch = "wasm32", not(test)))]
#[global_allocator]
#[allow(unsafe_code)]
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    // SAFETY: this target has no threads (no `atomics` target feature), so the allocator
    // is never used from two threads at once.
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };
