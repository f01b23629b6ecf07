// Test helpers: a recording stand-in for the collector that serves the built tracker and
// demo exactly where `footfall standalone` serves them, and headless Debian Chromium.
//
// Needs `cargo xtask dist` first (dist/tracker, dist/demo, npm/dist).

import http from 'node:http'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import assert from 'node:assert/strict'
import { chromium } from 'playwright-core'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const DIST = process.env.FOOTFALL_DIST || path.join(ROOT, 'dist')
const NPM_DIST = path.join(ROOT, 'npm/dist')

const TYPES = {
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css',
}

/**
 * Starts a server on 127.0.0.1 that records every POST to /api/batch.
 * `failures`: how many batch requests to answer 503 (Retry-After: `retryAfter`) first.
 * Extra pages for tests are served from `pages` ({ '/t/x.html': '<html>...' }).
 */
export async function startCollector({ failures = 0, retryAfter = 1, pages = {} } = {}) {
  const requests = [] // { status, contentType, body, events }
  const state = { failures }
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x')
    if (req.method === 'POST' && url.pathname === '/api/batch') {
      let body = ''
      req.on('data', (c) => (body += c))
      req.on('end', () => {
        let events = []
        try {
          events = JSON.parse(body).events
        } catch (e) {}
        const failing = state.failures > 0
        if (failing) state.failures--
        const status = failing ? 503 : 202
        requests.push({ status, contentType: req.headers['content-type'], body, events })
        if (failing) {
          res.writeHead(503, { 'Retry-After': String(retryAfter), 'Content-Type': 'application/json' })
          res.end('{"success":false,"error":{"code":"unavailable","message":"busy"}}')
        } else {
          res.writeHead(202, { 'Content-Type': 'application/json' })
          res.end(JSON.stringify({ success: true, accepted: events.length }))
        }
      })
      return
    }
    let file
    if (pages[url.pathname]) {
      res.writeHead(200, { 'Content-Type': TYPES['.html'] })
      res.end(pages[url.pathname])
      return
    }
    if (/^\/footfall(-[0-9a-f]+)?\.(js|wasm)$/.test(url.pathname)) {
      // The script and the content-hashed wasm it names, as the collector serves them.
      file = path.join(DIST, 'tracker', url.pathname)
    } else if (url.pathname.startsWith('/demo/')) {
      file = path.join(DIST, url.pathname)
    } else if (url.pathname.startsWith('/npm/')) {
      file = path.join(NPM_DIST, url.pathname.slice(5))
    }
    if (!file || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404)
      res.end()
      return
    }
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream' })
    fs.createReadStream(file).pipe(res)
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const base = `http://127.0.0.1:${server.address().port}`
  return {
    base,
    requests,
    state,
    /** Events of accepted (2xx) requests, in arrival order. */
    accepted: () => requests.filter((r) => r.status < 300).flatMap((r) => r.events),
    // Browsers keep connections alive: drop them rather than wait for them.
    close: () => new Promise((r) => (server.close(r), server.closeAllConnections())),
  }
}

/**
 * A desktop Chrome user agent. Headless Chromium announces itself as HeadlessChrome, which the
 * collector rightly drops as a bot; a per-context user agent is not applied to sendBeacon, so
 * tests that store events launch the browser with this one (`launch({ userAgent: DESKTOP_UA })`).
 */
export const DESKTOP_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36'

/** Headless Debian Chromium with the flags this machine needs (see ENVIRONMENT.md). */
export function launch({ userAgent } = {}) {
  const args = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ]
  if (userAgent) args.push(`--user-agent=${userAgent}`)
  return chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args })
}

/**
 * A plain web site on its own origin (another port): `files` maps a path to
 * `{ type, body }` (body a string or Buffer). It knows nothing about Footfall.
 */
export async function startSite(files) {
  const server = http.createServer((req, res) => {
    const f = files[new URL(req.url, 'http://x').pathname]
    if (!f && req.url === '/favicon.ico') {
      res.writeHead(204) // browsers ask for it; a 404 would be a console error
      res.end()
      return
    }
    if (!f) {
      res.writeHead(404)
      res.end()
      return
    }
    res.writeHead(200, { 'Content-Type': f.type, 'Cache-Control': 'no-store' })
    res.end(f.body)
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((r) => (server.close(r), server.closeAllConnections())),
  }
}

/**
 * GET `url` exactly as sent on the wire: no decoding, so `body.length` is what was
 * transferred. `headers` default to a browser's `Accept-Encoding: br, gzip`.
 */
export function wire(url, headers = { 'Accept-Encoding': 'br, gzip' }, { method = 'GET', body, localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, localAddress, agent: false }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Polls `fn` until it returns a truthy value, or fails after `ms`. */
export async function until(fn, ms = 10_000, what = 'condition') {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** A test page with the script tag and extra data-* attributes. */
export function scriptPage(attrs = '', body = '') {
  return `<!doctype html><html><head><title>t</title>
<script defer src="/footfall.js" data-site="test" data-api="/" ${attrs}></script></head>
<body>${body}</body></html>`
}

export const names = (events) => events.map((e) => e.event)

/** A tiny single-page app on another origin: a route button (pushState) and a buy button. */
export const APP_BODY = `
<button id="to-pricing">Pricing</button>
<button id="buy">Buy</button>
<div id="view">home</div>
<script>
  document.getElementById('to-pricing').addEventListener('click', () => {
    history.pushState({}, '', '/pricing')
    document.title = 'Pricing'
    document.getElementById('view').textContent = 'pricing'
  })
</script>`

/**
 * In a fresh context of `browser`: page load, SPA navigation, a click, leaving the page; then
 * checks through `readSummary()` (the stats API summary of the page's site) that exactly
 * those events were stored, once. The page must read the tracker's counters from
 * `window.footfall.stats()`.
 */
export async function visitApp(browser, url, readSummary) {
  const context = await browser.newContext()
  const page = await context.newPage()
  const errors = []
  page.on('pageerror', (e) => errors.push(e.message))
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()))
  await page.goto(url)
  await page.waitForFunction(() => window.footfall && window.footfall.stats().recorded >= 2)
  await page.click('#to-pricing')
  await page.waitForFunction(() => window.footfall.stats().recorded >= 4)
  await page.click('#buy')
  await page.waitForFunction(() => window.footfall.stats().recorded >= 5)
  const stats = await page.evaluate(() => window.footfall.stats())
  assert.equal(stats.errors, 0, JSON.stringify(stats))
  // Leaving the page beacons what is left (session_end included). The context stays open
  // until the events are stored: closing it could cancel a beacon still in flight.
  await page.close({ runBeforeUnload: true })
  const expected = { session_start: 1, page_view: 2, click: 2, session_end: 1 }
  const stored = await until(
    () => readSummary().then((s) => (s.events >= 6 ? s : null)),
    15_000,
    `the events of ${url} in the store`
  )
  // Retries and beacons that arrive late must not count twice.
  await sleep(1500)
  const settled = await readSummary()
  assert.deepEqual(settled.eventsByName, expected, JSON.stringify(settled))
  assert.equal(settled.events, stored.events, 'no late duplicate counted')
  assert.equal(settled.pageviews, 2)
  assert.equal(settled.visitors, 1)
  assert.deepEqual(errors, [], 'no errors in the page')
  await context.close()
}
