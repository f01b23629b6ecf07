// End-to-end tests of the built tracker (dist/) in real headless Chromium, against a
// recording stand-in for the collector (helpers.js). Run `cargo xtask dist` first.
//
//   node --test npm/test/
//
// Every page gets a fresh browser context (fresh localStorage/sessionStorage).

import test, { before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startCollector, launch, until, sleep, scriptPage, names } from './helpers.js'

let browser
before(async () => {
  browser = await launch()
})
after(async () => {
  await browser?.close()
})

/** A fresh page; `init` runs before any page script (to fake browser signals). */
async function open(url, init) {
  const context = await browser.newContext()
  if (init) await context.addInitScript(init)
  const page = await context.newPage()
  page.on('pageerror', (e) => console.log('pageerror:', e.message))
  await page.goto(url)
  await page.waitForFunction(() => window.footfall && window.footfall.stats)
  return page
}

const recorded = (page) => page.evaluate(() => window.footfall.stats().recorded || 0)

/** Unique events by eventId, in arrival order; fails on an eventId seen twice. */
function exactlyOnce(events) {
  const seen = new Set()
  for (const e of events) {
    assert.ok(!seen.has(e.eventId), `duplicate eventId ${e.eventId} (${e.event})`)
    seen.add(e.eventId)
  }
  return events
}

function dedupe(events) {
  const byId = new Map()
  for (const e of events) byId.set(e.eventId, e)
  return [...byId.values()]
}

test('demo page: session_start and page_view, then session_end by beacon on close', async () => {
  const c = await startCollector()
  try {
    const page = await open(c.base + '/demo/index.html')
    await until(() => recorded(page).then((n) => n >= 2), 5000, 'page view recorded')
    await page.close({ runBeforeUnload: true })
    await until(() => c.accepted().some((e) => e.event === 'session_end'), 5000, 'session_end')
    const events = exactlyOnce(c.accepted())
    assert.deepEqual(names(events), ['session_start', 'page_view', 'session_end'])
    const [start, view, end] = events
    assert.equal(view.page, c.base + '/demo/index.html')
    assert.equal(view.title, 'Footfall demo · Home')
    assert.ok(/^[A-Za-z0-9_-]{8,64}$/.test(view.eventId))
    assert.equal(start.sessionId, view.sessionId)
    assert.equal(end.sessionId, view.sessionId)
    assert.match(view.screen, /^\d+x\d+$/)
    assert.ok(view.lang && view.timezone)
    assert.equal(view.userAgent, undefined, 'the collector reads the user agent itself')
    for (const r of c.requests) {
      assert.match(r.contentType, /^text\/plain/)
      assert.equal(JSON.parse(r.body).site, 'demo')
    }
  } finally {
    await c.close()
  }
})

test('demo clicks: custom, plain, outbound, track() and ignored areas', async () => {
  const c = await startCollector()
  try {
    const page = await open(c.base + '/demo/index.html')
    // Keep the page when the outbound link is clicked (the tracker listens before this).
    await page.evaluate(() =>
      document.getElementById('out2').addEventListener('click', (e) => e.preventDefault())
    )
    for (const id of ['signup', 'plain', 'newsletter', 'ignored', 'out2']) {
      await page.click('#' + id)
    }
    await until(() => recorded(page).then((n) => n >= 6), 5000, 'clicks recorded')
    await page.close({ runBeforeUnload: true })
    await until(() => c.accepted().some((e) => e.event === 'session_end'), 5000, 'flush')
    const events = exactlyOnce(c.accepted())
    assert.deepEqual(names(events), [
      'session_start',
      'page_view',
      'signup',
      'click',
      'click', // the newsletter button itself (capture phase, before its onclick)
      'newsletter',
      'outbound',
      'session_end',
    ])
    const by = (n) => events.find((e) => e.event === n)
    assert.deepEqual(by('signup').props, { plan: 'pro' })
    assert.equal(by('signup').target.tag, 'button')
    assert.equal(by('signup').target.id, 'signup')
    assert.equal(by('click').target.id, 'plain')
    assert.equal(events[4].target.id, 'newsletter')
    assert.deepEqual(by('newsletter').props, { source: 'home', position: 2, confirmed: true })
    assert.equal(by('outbound').target.href, 'https://crates.io/')
    assert.equal(by('outbound').target.tag, 'a')
  } finally {
    await c.close()
  }
})

test('following an internal link: next page view, same session, one session_end', async () => {
  const c = await startCollector()
  try {
    const page = await open(c.base + '/demo/index.html')
    await until(() => recorded(page).then((n) => n >= 2), 5000, 'first view')
    await Promise.all([page.waitForURL(/pricing/), page.click('#docs')])
    await page.waitForFunction(() => window.footfall && window.footfall.stats().recorded >= 1)
    await page.close({ runBeforeUnload: true })
    await until(() => c.accepted().some((e) => e.event === 'session_end'), 5000, 'flush')
    const events = dedupe(c.accepted())
    assert.deepEqual(names(events), ['session_start', 'page_view', 'click', 'page_view', 'session_end'])
    assert.equal(new Set(events.map((e) => e.sessionId)).size, 1, 'one session across pages')
    assert.equal(events[3].page, c.base + '/demo/pricing.html#faq')
    assert.equal(events[3].referrer, c.base + '/demo/index.html')
  } finally {
    await c.close()
  }
})

test('single-page app: one page_view per route change, no duplicates', async () => {
  const c = await startCollector()
  try {
    const page = await open(c.base + '/demo/app.html')
    await until(() => recorded(page).then((n) => n >= 2), 5000, 'first view')
    const step = async (action) => {
      await action()
      await sleep(60) // the tracker records a tick after the route change
    }
    await step(() => page.click('#to-inbox')) // pushState
    await step(() => page.click('#to-settings')) // pushState
    await step(() => page.click('#filter')) // replaceState with a new URL
    await step(() => page.click('#hash')) // hashchange (and popstate)
    await step(() => page.click('#back')) // popstate
    // Same URL again: router noise that must not count.
    await step(() => page.evaluate(() => history.replaceState(history.state, '', location.href)))
    await step(() => page.evaluate(() => history.pushState(history.state, '', location.href)))
    await page.close({ runBeforeUnload: true })
    await until(() => c.accepted().some((e) => e.event === 'session_end'), 5000, 'flush')
    const events = exactlyOnce(c.accepted())
    const views = events.filter((e) => e.event === 'page_view').map((e) => e.page.slice(c.base.length))
    assert.deepEqual(views, [
      '/demo/app.html',
      '/demo/app.html?route=inbox',
      '/demo/app.html?route=settings',
      '/demo/app.html?route=settings&filter=unread',
      '/demo/app.html?route=settings&filter=unread#details',
      '/demo/app.html?route=settings&filter=unread',
    ])
    const titles = events.filter((e) => e.event === 'page_view').map((e) => e.title)
    assert.equal(titles[1], 'Footfall demo · App · inbox', 'title read after the route rendered')
    assert.equal(events.filter((e) => e.event === 'session_start').length, 1)
    // Clicks on the router buttons are captured too.
    assert.equal(events.filter((e) => e.event === 'click').length, 5)
  } finally {
    await c.close()
  }
})

test('collector answers 503 for a while: events are retried and arrive exactly once', async () => {
  const c = await startCollector({
    failures: 2,
    retryAfter: 1,
    pages: { '/t/retry.html': scriptPage('data-flush-interval="200"') },
  })
  try {
    const page = await open(c.base + '/t/retry.html')
    await page.evaluate(() => {
      footfall.track('a', { n: 1 })
      footfall.track('b')
    })
    await until(() => c.accepted().length >= 4, 10_000, 'delivery after recovery')
    const failed = c.requests.filter((r) => r.status === 503)
    assert.equal(failed.length, 2)
    const events = exactlyOnce(c.accepted())
    assert.deepEqual(names(events), ['session_start', 'page_view', 'a', 'b'])
    // The retries carried the very same events (same ids): the store dedupes by them.
    const ids = (r) => r.events.map((e) => e.eventId)
    for (const f of failed) for (const id of ids(f)) assert.ok(events.some((e) => e.eventId === id))
    const stats = await page.evaluate(() => footfall.stats())
    assert.equal(stats.retries, 2)
    assert.equal(stats.queued, 0)
  } finally {
    await c.close()
  }
})

test('collector down while the visitor moves on: the next page delivers the backlog', async () => {
  const page1 = scriptPage('data-flush-interval="100"', '<a id="next" href="/t/two.html">next</a>')
  const page2 = scriptPage('data-flush-interval="100"')
  const c = await startCollector({
    failures: 1000,
    retryAfter: 30,
    pages: { '/t/one.html': page1, '/t/two.html': page2 },
  })
  try {
    const page = await open(c.base + '/t/one.html')
    await page.evaluate(() => footfall.track('while_down'))
    await until(() => c.requests.length >= 1, 5000, 'first (failing) request')
    c.state.failures = 0 // the collector recovers; the tracker is backing off for 30 s
    await Promise.all([page.waitForURL(/two/), page.click('#next')])
    await until(() => c.accepted().some((e) => e.event === 'while_down'), 10_000, 'backlog')
    await until(() => c.accepted().filter((e) => e.event === 'page_view').length >= 2, 5000, 'p2')
    const events = dedupe(c.accepted())
    assert.equal(events.filter((e) => e.event === 'while_down').length, 1)
    assert.deepEqual(
      events.filter((e) => e.event === 'page_view').map((e) => e.page.slice(c.base.length)),
      ['/t/one.html', '/t/two.html']
    )
  } finally {
    await c.close()
  }
})

for (const [signal, init] of [
  ['Do-Not-Track', () => Object.defineProperty(Navigator.prototype, 'doNotTrack', { get: () => '1' })],
  [
    'Global Privacy Control',
    () => Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true }),
  ],
]) {
  test(`${signal} with data-respect-dnt: nothing is sent`, async () => {
    const c = await startCollector({
      pages: {
        '/t/respect.html': scriptPage('data-respect-dnt data-flush-interval="100"', '<button id="b">b</button>'),
        '/t/plain.html': scriptPage('data-flush-interval="100"'),
      },
    })
    try {
      const page = await open(c.base + '/t/respect.html', init)
      await page.click('#b')
      await page.evaluate(() => footfall.track('x'))
      // The wasm loads asynchronously; the verdict is there once it started.
      await page.waitForFunction(() => footfall.stats().started)
      assert.equal((await page.evaluate(() => footfall.stats())).ignored, 'dnt')
      await page.close({ runBeforeUnload: true })
      await sleep(600)
      assert.equal(c.requests.length, 0)
      // Without the attribute the same browser is tracked (respecting is opt-in).
      const plain = await open(c.base + '/t/plain.html', init)
      await until(() => c.accepted().length >= 2, 5000, 'tracked without data-respect-dnt')
      await plain.close()
    } finally {
      await c.close()
    }
  })
}

test('data-ignore-localhost: nothing is sent from 127.0.0.1', async () => {
  const c = await startCollector({
    pages: { '/t/local.html': scriptPage('data-ignore-localhost data-flush-interval="100"') },
  })
  try {
    const page = await open(c.base + '/t/local.html')
    await page.evaluate(() => footfall.track('x'))
    // The wasm loads asynchronously; the verdict is there once it started.
    await page.waitForFunction(() => footfall.stats().started)
    assert.equal((await page.evaluate(() => footfall.stats())).ignored, 'localhost')
    await page.close({ runBeforeUnload: true })
    await sleep(500)
    assert.equal(c.requests.length, 0)
  } finally {
    await c.close()
  }
})

test('require consent: nothing until consent(true), nothing after consent(false)', async () => {
  const c = await startCollector({
    pages: { '/t/consent.html': scriptPage('data-require-consent data-flush-interval="100"') },
  })
  try {
    const page = await open(c.base + '/t/consent.html')
    await page.evaluate(() => footfall.track('before'))
    await sleep(400)
    assert.equal(c.requests.length, 0)
    await page.evaluate(() => {
      footfall.consent(true)
      footfall.track('granted')
    })
    await until(() => c.accepted().some((e) => e.event === 'granted'), 5000, 'granted events')
    await page.evaluate(() => {
      footfall.consent(false)
      footfall.track('after')
    })
    await page.close({ runBeforeUnload: true })
    await sleep(400)
    assert.deepEqual(names(dedupe(c.accepted())), ['session_start', 'page_view', 'granted'])
  } finally {
    await c.close()
  }
})

test('identify() adds userId to later events', async () => {
  const c = await startCollector({
    pages: { '/t/id.html': scriptPage('data-flush-interval="100"') },
  })
  try {
    const page = await open(c.base + '/t/id.html')
    await page.evaluate(() => {
      footfall.identify('user-42')
      footfall.track('after_login')
    })
    await until(() => c.accepted().some((e) => e.event === 'after_login'), 5000, 'event')
    const e = c.accepted().find((e) => e.event === 'after_login')
    assert.equal(e.userId, 'user-42')
    assert.equal(c.accepted().find((e) => e.event === 'page_view').userId, undefined)
  } finally {
    await c.close()
  }
})

test('text crosses into the wasm intact, also when a message makes its memory grow', async () => {
  const c = await startCollector({
    pages: { '/t/text.html': scriptPage('data-flush-interval="100"') },
  })
  try {
    const page = await open(c.base + '/t/text.html')
    await until(() => recorded(page).then((n) => n >= 2), 5000, 'page view recorded')
    // A 1 MB prop value is a 4 MB message (the interface passes code points): more than
    // the wasm's memory had, so it grows in the middle of a call.
    const ok = await page.evaluate(() => [
      footfall.track('big', { v: 'x'.repeat(1 << 20) }),
      footfall.track('text', { s: 'é ✓ 😀 "q" \\ \n', lone: 'a\ud800b' }),
    ])
    assert.deepEqual(ok, [true, true])
    await until(() => c.accepted().some((e) => e.event === 'text'), 5000, 'events')
    const big = c.accepted().find((e) => e.event === 'big')
    assert.equal(big.props.v, 'x'.repeat(256), 'cut to the collector limit')
    const text = c.accepted().find((e) => e.event === 'text')
    assert.equal(text.props.s, 'é ✓ 😀 "q" \\ \n')
    assert.equal(text.props.lone, 'a\ufffdb', 'a lone surrogate becomes U+FFFD')
    assert.equal((await page.evaluate(() => footfall.stats())).errors, 0)
  } finally {
    await c.close()
  }
})

test('npm build: ESM import in the browser, calls before init are queued', async () => {
  const html = `<!doctype html><title>esm</title><script type="module">
    import { init, track, stats } from '/npm/index.js'
    track('early', { queued: true })
    window.ready = init({ site: 'esm-site', api: '/', flushInterval: 100 })
    window.footfall = { stats }
  </script>`
  const c = await startCollector({ pages: { '/t/esm.html': html } })
  try {
    const page = await open(c.base + '/t/esm.html')
    assert.equal(await page.evaluate(() => window.ready), true)
    await until(() => c.accepted().some((e) => e.event === 'early'), 5000, 'queued call')
    assert.equal(JSON.parse(c.requests[0].body).site, 'esm-site')
    assert.deepEqual(names(c.accepted()), ['session_start', 'page_view', 'early'])
  } finally {
    await c.close()
  }
})

test('a broken props object or wrong calls never throw into the page', async () => {
  const c = await startCollector({ pages: { '/t/bad.html': scriptPage('data-flush-interval="100"') } })
  try {
    const page = await open(c.base + '/t/bad.html')
    await page.evaluate(() => {
      const hostile = new Proxy({}, { ownKeys: () => { throw new Error('boom') } })
      footfall.track('ok1', hostile)
      footfall.track('bad name!')
      footfall.track(undefined)
      footfall.identify({ toString: () => { throw new Error('no') } })
      footfall('unknown-command')
      footfall.track('ok2', { nested: { a: 1 }, list: [1], fn() {}, nan: NaN, s: 'x'.repeat(1000) })
    })
    // Calls made before the wasm is ready are queued and replayed once it is: the swallowed
    // errors are counted then, not necessarily by the time the calls return.
    await until(async () => (await page.evaluate(() => footfall.stats())).errors >= 1, 5000, 'errors counted')
    await until(() => c.accepted().some((e) => e.event === 'ok2'), 5000, 'tracker still works')
    const ok2 = c.accepted().find((e) => e.event === 'ok2')
    assert.deepEqual(Object.keys(ok2.props), ['s'])
    assert.equal(ok2.props.s.length, 256)
  } finally {
    await c.close()
  }
})
