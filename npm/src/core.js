// The JS shell around the wasm core (sdk-wasm). It only wires browser events, reads the
// page facts they carry and performs the requests the core asks for; what to record,
// when to send and what to retry is decided in Rust. Shared by the npm entry (index.js)
// and the script-tag entry (script.js).
//
// Rules: never throw into the host page (every entry point is wrapped and counts its
// errors), never make the page wait (calls made before the wasm is ready are queued and
// replayed), no cookies.

// Mirrors `sdk-wasm/src/config.rs` `flags` and `web/mod.rs` `SIGNAL_*`.
const RESPECT_DNT = 1
const IGNORE_LOCALHOST = 2
const AUTO_PAGEVIEWS = 4
const AUTO_CLICKS = 8
const REQUIRE_CONSENT = 16
const SIGNAL_DNT = 1
const SIGNAL_GPC = 2
// Operation codes of the wasm's one export, `call(op, msg, a, b)`: sdk-wasm/src/web/mod.rs `op`.
const CONFIGURE = 0
const START = 1
const PAGE = 2
const PROP_ = 3
const TRACK = 4
const CLICK = 5
const IDENTIFY = 6
const CONSENT = 7
const TAKE = 8
const DONE = 9
const WAIT = 10
const LEAVE = 11
const DRAIN = 12
const DRAINED = 13
const STATS = 14

// What autocapture records: the nearest link, button or tagged element of the click.
const CLICKABLE =
  'a[href],button,input[type=submit],input[type=button],[data-footfall-event]'
const PROP = 'data-footfall-prop-'

let w // the wasm's `call`, once started
let m0 // the wasm's `call`, also when this page is ignored (for stats())
let pending = [] // calls made before the wasm was ready
let ready // Promise<boolean> of init()
let endpoint = ''
let busy = false // one fetch at a time: the core hands out one batch at a time
let timer
let errors = 0

// Strings cross into the wasm as one message per call, fields separated by U+001F (see
// sdk-wasm/src/web/mod.rs for why); that character is removed from values.
const msg = (...fields) =>
  fields.map((f) => (f == null ? '' : String(f).replace(/\x1f/g, ''))).join('\x1f')

// Wraps an entry point so nothing it does can throw into the host page.
const safe =
  (f) =>
  (...args) => {
    try {
      return f(...args)
    } catch (e) {
      errors++
    }
  }

// Public calls before the wasm is ready are queued; after an ignored start, dropped.
const queued =
  (f) =>
  (...args) => {
    if (w) return safe(f)(...args)
    if (pending) pending.push(() => f(...args))
  }

/**
 * Starts the tracker once; later calls return the first call's promise. `load` resolves
 * to the wasm's `call` export and is only called here, asynchronously, so the page never
 * waits for the download.
 */
export function boot(load, o) {
  if (ready) return ready
  o = o || {}
  const on = (v, d) => (v === undefined ? d : !!v)
  const bits =
    (on(o.respectDnt, false) ? RESPECT_DNT : 0) |
    (on(o.ignoreLocalhost, false) ? IGNORE_LOCALHOST : 0) |
    (on(o.autoPageviews, true) ? AUTO_PAGEVIEWS : 0) |
    (on(o.autoClicks, true) ? AUTO_CLICKS : 0) |
    (on(o.requireConsent, false) ? REQUIRE_CONSENT : 0)
  ready = Promise.resolve()
    .then(load)
    .then((call) => {
      m0 = call
      endpoint = call(
        CONFIGURE,
        msg(
          o.site || location.hostname,
          o.api == null ? '/' : o.api,
          o.batchSize | 0,
          o.flushInterval | 0,
          o.maxQueue | 0
        ),
        bits
      )
      const nav = navigator
      let tz
      try {
        tz = Intl.DateTimeFormat().resolvedOptions().timeZone
      } catch (e) {}
      const started = call(
        START,
        msg(screen.width + 'x' + screen.height, nav.language, tz, location.hostname, location.protocol),
        (nav.doNotTrack == '1' ? SIGNAL_DNT : 0) |
          (nav.globalPrivacyControl === true ? SIGNAL_GPC : 0)
      )
      const calls = pending
      pending = null
      if (!started) return false
      w = call
      listen()
      page()
      calls.forEach((f) => safe(f)())
      pump()
      return true
    })
    .catch(() => {
      errors++
      pending = null
      return false
    })
  return ready
}

function listen() {
  const on = (target, type, f, capture) =>
    target.addEventListener(type, safe(f), capture)
  // Capture phase: a site calling stopPropagation() does not hide its clicks.
  on(document, 'click', click, true)
  on(document, 'auxclick', (e) => e.button == 1 && click(e), true)
  // Single-page apps: route changes are history calls or popstate/hashchange. The page
  // view waits a tick so the router has set the new title; the core drops repeats of a URL.
  const later = () => setTimeout(safe(() => page()))
  for (const m of ['pushState', 'replaceState']) {
    const orig = history[m]
    history[m] = function () {
      const r = orig.apply(this, arguments)
      later()
      return r
    }
  }
  on(window, 'popstate', later)
  on(window, 'hashchange', later)
  // Back/forward cache: the page comes back without loading, and counts again.
  on(window, 'pageshow', (e) => e.persisted && page(true))
  // Hidden may be the last moment a mobile page gets; pagehide is the last on desktop.
  on(document, 'visibilitychange', () => document.visibilityState == 'hidden' && flush())
  on(window, 'pagehide', () => (w(LEAVE), flush()))
}

function page(restored) {
  w(PAGE, msg(location.href, document.title, document.referrer), restored ? 1 : 0)
  pump()
}

function click(e) {
  const t = e.target
  const el =
    t && t.closest && !t.closest('[data-footfall-ignore]') && t.closest(CLICKABLE)
  if (!el) return
  // instanceof rather than the tag: an SVG <a> has no string href.
  const a = el instanceof HTMLAnchorElement ? el : 0
  for (const at of el.attributes) {
    if (at.name.startsWith(PROP)) w(PROP_, msg(at.name.slice(PROP.length), at.value), 0)
  }
  const text = (el.localName == 'input' ? el.value : el.textContent) || ''
  w(
    CLICK,
    msg(
      el.localName,
      text.slice(0, 2000).replace(/\s+/g, ' ').trim(),
      el.id,
      el.getAttribute('data-footfall-event'),
      a ? a.href : '',
      a ? a.host : '',
      a ? a.protocol : ''
    )
  )
  pump()
}

function stage(props) {
  if (props && typeof props == 'object') {
    for (const k of Object.keys(props).slice(0, 64)) {
      const v = props[k]
      const t = typeof v
      // Kinds as in web/mod.rs PROP_*; numbers go as JSON text (NaN/Infinity are dropped).
      const kind = t == 'string' ? 0 : t == 'number' ? 1 : t == 'boolean' ? 2 : -1
      if (kind >= 0) w(PROP_, msg(k, v), kind)
    }
  }
}

// Sends what the core says is due, one request at a time, then sleeps until the core's
// next deadline (batch timer or backoff).
function pump() {
  if (busy) return
  const body = w(TAKE)
  if (body) {
    busy = true
    post(body).then(
      safe(([status, retryAfter]) => {
        busy = false
        w(DONE, '', status, retryAfter)
        pump()
      })
    )
    return
  }
  clearTimeout(timer)
  const ms = w(WAIT)
  if (ms) timer = setTimeout(safe(pump), +ms)
}

// text/plain keeps the request "simple": no CORS preflight. keepalive lets a request in
// flight finish when the page goes away. Status 0 stands for a network error.
function post(body) {
  return fetch(endpoint, { method: 'POST', body, keepalive: true, credentials: 'omit' }).then(
    (r) => [r.status, parseInt(r.headers.get('Retry-After')) || 0],
    () => [0, 0]
  )
}

// Page hidden or going away: hand everything to sendBeacon, which outlives the page. If
// the browser refuses (quota), try a keepalive fetch but keep the events: they stay in
// localStorage for the next page, and the collector drops the duplicate by eventId.
function flush() {
  for (let b; (b = w(DRAIN)); ) {
    let ok = false
    try {
      ok = navigator.sendBeacon(endpoint, b)
    } catch (e) {}
    if (!ok) post(b)
    w(DRAINED, '', ok ? 1 : 0)
    if (!ok) break
  }
}

export const track = queued((name, props) => {
  stage(props)
  const ok = !!w(TRACK, String(name))
  pump()
  return ok
})

export const identify = queued((id) => {
  w(IDENTIFY, id == null ? '' : String(id))
})

export const consent = queued((granted) => {
  if (w(CONSENT, '', granted ? 1 : 0)) page()
})

/** Counters for debugging: queued, sent, dropped, rejected, retries, errors, ... */
export function stats() {
  const s = m0 ? JSON.parse(m0(STATS)) : { started: false, queued: pending ? pending.length : 0 }
  s.errors = (s.errors || 0) + errors
  return s
}
