// End-to-end against the real product: `footfall standalone` serving the built tracker and
// demo (dist/), Chromium browsing the demo, events read back through the stats API.
//
// Needs `cargo xtask dist` and a built `footfall` binary: FOOTFALL_BIN, or
// $CARGO_TARGET_DIR/debug/footfall (`cargo build -p footfall`). Skipped, saying why, when
// there is none.
import test from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { DESKTOP_UA, launch, until, sleep } from './helpers.js'
import { footfallBin, startFootfall } from '../test-dashboard/server.js'

test('demo on footfall standalone: events arrive in the store exactly once', async (t) => {
  if (!fs.existsSync(footfallBin())) {
    t.skip('no footfall binary: `cargo build -p footfall` (or set FOOTFALL_BIN)')
    return
  }
  const server = await startFootfall({ token: 'tracker-e2e-token' })
  const readSummary = () => server.stats('/api/stats/summary?site=demo')
  // A desktop user agent for every request, beacons included: HeadlessChrome is a bot.
  const browser = await launch({ userAgent: DESKTOP_UA })
  try {
    // A context of its own, kept open until the end: `browser.newPage()` would close its
    // context with the page, cancelling the beacon the page sends as it goes.
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(server.base + '/demo/index.html')
    await page.waitForFunction(() => window.footfall && window.footfall.stats().recorded >= 2)
    await page.click('#signup') // a custom event via data-footfall-event
    await page.evaluate(() => window.footfall.track('e2e_custom', { n: 1 }))
    // Closing the page beacons everything, session_end included.
    await page.close({ runBeforeUnload: true })
    // session_start, page_view, signup, e2e_custom, session_end
    const expected = 5
    const summary = await until(
      () => readSummary().then((s) => (s.events >= expected ? s : null)),
      15_000,
      'events in the store'
    )
    // Give late duplicates (retries, beacons) a moment: the store must still count once.
    await sleep(1500)
    const settled = await readSummary()
    assert.equal(settled.events, expected, JSON.stringify(settled))
    assert.equal(settled.pageviews, 1)
    assert.equal(settled.visitors, 1)
    assert.equal(settled.events, summary.events, 'no late duplicate counted')
  } finally {
    await browser.close()
    await server.stop()
  }
})
