// End-to-end against the real product: `footfall standalone` serving the built tracker and
// demo (dist/), Chromium browsing the demo, events read back through the stats API.
//
// Needs `cargo xtask dist` and a built `footfall` binary: FOOTFALL_BIN, or
// $CARGO_TARGET_DIR/{debug,release}/footfall (`cargo build -p footfall`). Skipped, saying
// why, when there is none.
import test from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { ROOT, DIST, launch, until, sleep } from './helpers.js'

const TOKEN = 'tracker-e2e-token'
// A desktop Chrome user agent: the collector filters bots, and headless Chromium says so.
const UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'

function binary() {
  if (process.env.FOOTFALL_BIN) return process.env.FOOTFALL_BIN
  const target = process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target')
  return ['debug', 'release']
    .map((p) => path.join(target, p, 'footfall'))
    .filter((p) => fs.existsSync(p))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0]
}

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })

async function standalone() {
  const bin = binary()
  const port = await freePort()
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'footfall-e2e-'))
  const args = ['standalone', '--listen', `127.0.0.1:${port}`, '--data-dir', data]
  args.push('--admin-token', TOKEN, '--assets-dir', DIST)
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr.on('data', (d) => (log = (log + d).slice(-4000)))
  const base = `http://127.0.0.1:${port}`
  await until(
    () => fetch(base + '/api/health').then((r) => r.ok, () => false),
    20_000,
    'footfall standalone to answer /api/health'
  ).catch((e) => {
    child.kill()
    throw new Error(`${e.message}\n${log}`)
  })
  return {
    base,
    summary: () =>
      fetch(base + '/api/stats/summary?site=demo', {
        headers: { Authorization: `Bearer ${TOKEN}` },
      }).then((r) => r.json()),
    stop: async () => {
      child.kill('SIGTERM')
      await new Promise((r) => child.once('exit', r))
      fs.rmSync(data, { recursive: true, force: true })
    },
  }
}

test('demo on footfall standalone: events arrive in the store exactly once', async (t) => {
  if (!binary()) {
    t.skip('no footfall binary: `cargo build -p footfall` (or set FOOTFALL_BIN)')
    return
  }
  const server = await standalone()
  const browser = await launch()
  try {
    const context = await browser.newContext({ userAgent: UA })
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
      () => server.summary().then((s) => (s.events >= expected ? s : null)),
      15_000,
      'events in the store'
    )
    // Give late duplicates (retries, beacons) a moment: the store must still count once.
    await sleep(1500)
    const settled = await server.summary()
    assert.equal(settled.events, expected, JSON.stringify(settled))
    assert.equal(settled.pageviews, 1)
    assert.equal(settled.visitors, 1)
    assert.equal(settled.events, summary.events, 'no late duplicate counted')
  } finally {
    await browser.close()
    await server.stop()
  }
})
