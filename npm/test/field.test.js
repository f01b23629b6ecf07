// Footfall as it is deployed: the real `footfall standalone` binary started from another
// directory with no --assets-dir (everything embedded), a web site on ANOTHER origin that
// adds the documented script tag (or bundles the npm package), a desktop Chromium, and the
// bytes on the wire.
//
// Needs `cargo xtask dist` and then `cargo build -p footfall` (which embeds dist/), as the
// `tracker browser` step of `cargo xtask test` (and .ci/test-tracker.sh) does.
import test, { before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as esbuild from 'esbuild'
import { ROOT, APP_BODY, DESKTOP_UA, launch, startSite, until, visitApp, wire } from './helpers.js'
import { startFootfall } from '../test-dashboard/server.js'

const TRACKER_BUDGET = 12 * 1024
const DASHBOARD_BUDGET = 250 * 1024

let server, browser
before(async () => {
  // From the temp folder, without --assets-dir: only what is inside the binary is served.
  server = await startFootfall({
    token: 'field-test-token',
    assetsDir: null,
    cwd: os.tmpdir(),
    sites: ['field.test', 'npm.test'],
  })
  browser = await launch({ userAgent: DESKTOP_UA })
})
after(async () => {
  await browser?.close()
  await server?.stop()
})

const summary = (site) => server.stats(`/api/stats/summary?site=${site}`)

test('the binary serves the tracker, demo and dashboard from anywhere, delivered compressed', async () => {
  for (const p of ['/footfall.js', '/demo/', '/dashboard/']) {
    const r = await wire(server.base + p)
    assert.equal(r.status, 200, p)
    assert.equal(r.headers['content-encoding'], 'br', p)
    assert.equal(r.headers.vary, 'Accept-Encoding', p)
    assert.equal(Number(r.headers['content-length']), r.body.length, p)
  }

  // The tracker: the script, and the content-hashed wasm it names.
  const script = await wire(server.base + '/footfall.js')
  assert.equal(script.headers['access-control-allow-origin'], '*')
  assert.equal(script.headers['cross-origin-resource-policy'], 'cross-origin')
  const maxAge = Number(/max-age=(\d+)/.exec(script.headers['cache-control'])?.[1])
  assert.ok(maxAge > 0 && maxAge <= 3600, script.headers['cache-control'])
  assert.match(script.headers['cache-control'], /stale-while-revalidate/)
  const text = await (await fetch(server.base + '/footfall.js')).text()
  const wasmName = /footfall-[0-9a-f]{10}\.wasm/.exec(text)?.[0]
  assert.ok(wasmName, 'the script names its wasm by content hash')
  const wasm = await wire(`${server.base}/${wasmName}`)
  assert.equal(wasm.status, 200)
  assert.equal(wasm.headers['content-type'], 'application/wasm', 'streaming compilation needs it')
  assert.equal(wasm.headers['access-control-allow-origin'], '*')
  assert.equal(wasm.headers['cross-origin-resource-policy'], 'cross-origin')
  assert.match(wasm.headers['cache-control'], /max-age=31536000.*immutable/)
  const tracker = script.body.length + wasm.body.length
  console.log(`tracker on the wire (br): ${script.body.length} + ${wasm.body.length} = ${tracker} B`)
  assert.ok(tracker <= TRACKER_BUDGET, `tracker ${tracker} B > ${TRACKER_BUDGET} B`)

  // Revalidation is a 304, with the same cross-origin headers.
  const again = await wire(server.base + '/footfall.js', {
    'Accept-Encoding': 'br, gzip',
    'If-None-Match': script.headers.etag,
  })
  assert.equal(again.status, 304)
  assert.equal(again.body.length, 0)
  assert.equal(again.headers['access-control-allow-origin'], '*')

  // The dashboard: page, glue and wasm as a browser downloads them.
  const page = await wire(server.base + '/dashboard/')
  const html = await (await fetch(server.base + '/dashboard/')).text()
  const files = [...new Set(html.match(/dashboard-[0-9a-f]{10}\.(js|wasm)/g))]
  assert.equal(files.length, 2, html)
  let dashboard = page.body.length
  for (const f of files) {
    const r = await wire(`${server.base}/dashboard/${f}`)
    assert.equal(r.status, 200)
    assert.match(r.headers['cache-control'], /immutable/)
    dashboard += r.body.length
  }
  console.log(`dashboard on the wire (br): ${dashboard} B`)
  assert.ok(dashboard <= DASHBOARD_BUDGET, `dashboard ${dashboard} B > ${DASHBOARD_BUDGET} B`)

  // The API is never cacheable.
  const health = await wire(server.base + '/api/health')
  assert.equal(health.headers['cache-control'], 'no-store')
})

test('the documented script tag on another origin: page view, SPA navigation, click, leave', async () => {
  const site = await startSite({
    '/': {
      type: 'text/html; charset=utf-8',
      body: `<!doctype html><html><head><title>Home</title>
<script defer src="${server.base}/footfall.js" data-site="field.test"></script>
</head><body>${APP_BODY}</body></html>`,
    },
  })
  try {
    assert.notEqual(new URL(site.base).origin, new URL(server.base).origin)
    await visitApp(browser, site.base + '/', () => summary('field.test'))
  } finally {
    await site.close()
  }
})

test('the npm ESM build bundled into a page on another origin', async () => {
  // What a site does with the package: bundle it (esbuild here), ship the wasm next to the
  // bundle (the `new URL('./footfall.wasm', import.meta.url)` pattern), serve both itself.
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'footfall-bundle-'))
  try {
    fs.writeFileSync(
      path.join(out, 'main.js'),
      `import { init, stats } from 'footfall'
init({ site: 'npm.test', api: ${JSON.stringify(server.base)} })
// Only for this test, which reads the tracker's counters as for the script tag.
window.footfall = { stats }`
    )
    await esbuild.build({
      entryPoints: [path.join(out, 'main.js')],
      bundle: true,
      format: 'esm',
      outfile: path.join(out, 'app.js'),
      alias: { footfall: path.join(ROOT, 'npm') },
      logLevel: 'warning',
    })
    const site = await startSite({
      '/': {
        type: 'text/html; charset=utf-8',
        body: `<!doctype html><html><head><title>Home</title>
<script type="module" src="/app.js"></script></head><body>${APP_BODY}</body></html>`,
      },
      '/app.js': { type: 'text/javascript', body: fs.readFileSync(path.join(out, 'app.js')) },
      '/footfall.wasm': {
        type: 'application/wasm',
        body: fs.readFileSync(path.join(ROOT, 'npm/dist/footfall.wasm')),
      },
    })
    try {
      await visitApp(browser, site.base + '/', () => summary('npm.test'))
    } finally {
      await site.close()
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true })
  }
})

test('the live dashboard shows what the other-origin page sent', async () => {
  const page = await browser.newPage()
  try {
    await page.goto(server.base + '/dashboard/')
    await page.fill('#token', server.token)
    await page.click('button[type=submit]')
    const attr = (sel, name) => page.locator(sel).getAttribute(name, { timeout: 1_000 }).catch(() => null)
    await until(async () => (await attr('#status', 'data-status')) === 'live', 15_000, 'live')
    await page.selectOption('#site', 'field.test')
    await until(
      async () => Number(await attr('#today-pageviews', 'data-value')) >= 2,
      10_000,
      "today's page views"
    ).catch(async (e) => {
      await page.screenshot({ path: path.join(ROOT, 'artifacts/field-dashboard.png'), fullPage: true })
      throw e
    })
    const feed = await page.locator('#live-feed').textContent()
    assert.match(feed, /click/)
    assert.match(feed, /\/pricing/)
  } finally {
    await page.close()
  }
})
