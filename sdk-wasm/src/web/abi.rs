//! The wasm's interface to `npm/src/load.js`, by hand: three exports and three imports.
//!
//! A call: the shell asks [`io`] for room for the message's code points and writes them
//! there, then calls [`call`] with the operation and its numbers, which returns the length
//! of the UTF-8 result and leaves it where [`out`] says. Both sides only read and write
//! inside those two buffers (each a `Vec` that stays allocated until the next call), so
//! the Rust side reads no raw pointers.
//!
//! Code points in rather than UTF-8: turning them into a `String` is a `char::from_u32`
//! each, while checking UTF-8 from outside (`str::from_utf8` and its table) costs 400
//! bytes brotli, and the shell needs no encoder.
//!
//! The browser tests (feature `std`) get the imports from wasm-bindgen, whose harness
//! cannot supply a plain import module; the functions behave the same.

use alloc::string::String;

use super::GLOBAL;

/// Makes the message buffer room for `chars` code points (see [`decode`]) and returns
/// where it is.
#[allow(unsafe_code)]
// SAFETY: no_mangle only fixes the export's name, and no other symbol is named `io`.
#[no_mangle]
pub extern "C" fn io(chars: usize) -> *mut u8 {
    let Ok(mut input) = GLOBAL.input.try_borrow_mut() else {
        return core::ptr::null_mut();
    };
    *input = alloc::vec![0; chars * 4];
    input.as_mut_ptr()
}

/// Runs [`super::call`] on the message in [`io`]'s buffer; returns the length of the
/// UTF-8 result, which stays at [`out`] until the next call.
#[allow(unsafe_code)]
// SAFETY: as for `io`: the name `call` is exported once.
#[export_name = "call"]
pub extern "C" fn call(op: u32, a: u32, b: u32) -> usize {
    // `try_borrow*` rather than `take`/`replace`, which could panic: a panic site brings its
    // message and source path into the download. The buffers are never borrowed across a
    // call (one thread, and the shell never calls in from inside a call).
    let msg = GLOBAL.input.try_borrow().map(|i| decode(&i));
    let result = super::call(op, &msg.unwrap_or_default(), a, b);
    match GLOBAL.output.try_borrow_mut() {
        Ok(mut out) => {
            *out = result;
            out.len()
        }
        Err(_) => 0,
    }
}

/// The message: Unicode code points, 4 little-endian bytes each (`codePointAt` of each
/// character); a lone surrogate (which a JS string may hold) or anything else that is not
/// a `char` becomes U+FFFD, as `TextEncoder` would make it. Capacity for 4 UTF-8 bytes per
/// code point: it never grows.
pub fn decode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    let mut buf = [0; 4];
    for c in bytes.chunks_exact(4) {
        let cp = c.iter().rev().fold(0, |n, &b| n << 8 | u32::from(b));
        s.push_str(
            char::from_u32(cp)
                .unwrap_or(char::REPLACEMENT_CHARACTER)
                .encode_utf8(&mut buf),
        );
    }
    s
}

/// Where the last result is.
#[allow(unsafe_code)]
// SAFETY: as for `io`.
#[no_mangle]
pub extern "C" fn out() -> *const u8 {
    GLOBAL
        .output
        .try_borrow()
        .map_or(core::ptr::null(), |s| s.as_ptr())
}

#[cfg(not(feature = "std"))]
#[allow(unsafe_code)]
// SAFETY: the functions are `safe`: `now` and `random` take nothing, and `store` only
// reads the two byte ranges it is given (both inside Rust-owned strings, see
// `storage_set`) and never writes to the memory.
#[link(wasm_import_module = "f")]
unsafe extern "C" {
    /// `Date.now()`.
    pub safe fn now() -> f64;
    /// `Math.random()`.
    pub safe fn random() -> f64;
    /// `storage_set` on pointers: 1 when the browser took the write.
    safe fn store(
        local: u32,
        site: *const u8,
        site_len: usize,
        value: *const u8,
        len: usize,
    ) -> u32;
}

/// Writes `value` for `site` to localStorage (`local`) or sessionStorage under the keys
/// in `super::storage`, or removes it when empty; false when the browser refused.
#[cfg(not(feature = "std"))]
pub fn storage_set(local: bool, site: &str, value: &str) -> bool {
    store(
        u32::from(local),
        site.as_ptr(),
        site.len(),
        value.as_ptr(),
        value.len(),
    ) != 0
}

#[cfg(feature = "std")]
pub use bindgen::*;

/// The same imports through wasm-bindgen, for the browser tests. `storage_set` is the
/// function `npm/src/load.js` gives the shipped wasm as `store`, on strings.
#[cfg(feature = "std")]
mod bindgen {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = Date)]
        pub fn now() -> f64;
        #[wasm_bindgen(js_namespace = Math)]
        pub fn random() -> f64;
    }

    #[wasm_bindgen(inline_js = "
export function storage_set(local, site, value) {
  try {
    const s = local ? localStorage : sessionStorage
    const key = (local ? 'footfall:queue:' : 'footfall:session:') + site
    value ? s.setItem(key, value) : s.removeItem(key)
    return true
  } catch (e) { return false }
}")]
    extern "C" {
        pub fn storage_set(local: bool, site: &str, value: &str) -> bool;
    }
}
