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
const SIGNAL_OPT_OUT = 4
// Operation codes of the wasm's one export, `call(op, msg, a, b)`: sdk-wasm/src/web/mod.rs `op`.
const START = 1
const PAGE = 2
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
const STATS_FIELDS = ['queued', 'recorded', 'sent', 'dropped', 'rejected', 'retries', 'invalid', 'errors', 'ignored', 'consent']

// What autocapture records: the nearest link, button or tagged element of the click.
const CLICKABLE = 'a[href],button,[type=submit],[type=button],[data-footfall-event]'
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
  // Off unless set, except automatic page views and clicks: on unless set to false.
  const bits =
    (o.respectDnt ? RESPECT_DNT : 0) |
    (o.ignoreLocalhost ? IGNORE_LOCALHOST : 0) |
    (o.autoPageviews !== false ? AUTO_PAGEVIEWS : 0) |
    (o.autoClicks !== false ? AUTO_CLICKS : 0) |
    (o.requireConsent ? REQUIRE_CONSENT : 0)
  ready = Promise.resolve()
    .then(load)
    .then((call) => {
      m0 = call
      const nav = navigator
      let tz
      try {
        tz = Intl.DateTimeFormat().resolvedOptions().timeZone
      } catch (e) {}
      const site = String(o.site || location.hostname).trim()
      const started = call(
        START,
        msg(
          site,
          o.batchSize | 0,
          o.flushInterval | 0,
          o.maxQueue | 0,
          screen.width + 'x' + screen.height,
          nav.language,
          tz,
          location.hostname,
          location.protocol,
          // What the core persisted on earlier pages (sdk-wasm/src/web/storage.rs keys).
          stored(sessionStorage, 'footfall:session:' + site),
          stored(localStorage, 'footfall:queue:' + site)
        ),
        bits,
        (nav.doNotTrack == '1' ? SIGNAL_DNT : 0) |
          (nav.globalPrivacyControl === true ? SIGNAL_GPC : 0) |
          (optedOut() ? SIGNAL_OPT_OUT : 0)
      )
      const calls = pending
      pending = null
      if (!started) return false
      // `https://x.org/` → `https://x.org/api/batch`; `/` or `` → `/api/batch` (same origin);
      // a path prefix stays (`https://cdn.x.org/ff` → `https://cdn.x.org/ff/api/batch`).
      endpoint = String(o.api == null ? '' : o.api).trim().replace(/\/+$/, '') + '/api/batch'
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

// Storage may be unavailable (sandboxed iframes, some private modes): then nothing.
function stored(area, key) {
  try {
    return area.getItem(key)
  } catch (e) {}
}

// `localStorage.footfall_ignore = "true"` excludes this browser (a site owner's own visits).
const optedOut = () => stored(localStorage, 'footfall_ignore') == 'true'

function listen() {
  const on = (target, type, f, capture) =>
    target.addEventListener(type, safe(f), capture)
  // Capture phase: a site calling stopPropagation() does not hide its clicks.
  on(document, 'click', click, true)
  on(document, 'auxclick', (e) => e.button == 1 && click(e), true)
  // Single-page apps: route changes are history calls or popstate/hashchange. The page
  // view waits a tick so the router has set the new title; the core drops repeats of a URL.
  const later = () => setTimeout(safe(page))
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
  const props = []
  for (const at of el.attributes) {
    if (at.name.startsWith(PROP)) props.push(at.name.slice(PROP.length), 0, at.value)
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
      a ? a.protocol : '',
      ...props
    )
  )
  pump()
}

// Props as `key␟kind␟value` triples; kinds as in web/mod.rs PROP_*; numbers go as JSON
// text (the core drops NaN/Infinity).
function triples(props) {
  const out = []
  if (props && typeof props == 'object') {
    for (const k of Object.keys(props).slice(0, 64)) {
      const v = props[k]
      const kind = ['string', 'number', 'boolean'].indexOf(typeof v)
      if (kind >= 0) out.push(k, kind, v)
    }
  }
  return out
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
  const ok = !!w(TRACK, msg(name, ...triples(props)))
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
  const s = { started: !!m0, queued: pending ? pending.length : 0, errors: 0 }
  // Comma-separated, in the order of sdk-wasm/src/tracker.rs STATS_FIELDS.
  if (m0) {
    m0(STATS)
      .split(',')
      .forEach((v, i) => {
        if (v) s[STATS_FIELDS[i]] = i < 8 ? +v : v
      })
  }
  s.errors += errors
  return s
}
