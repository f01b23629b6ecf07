// Dashboard budget: page + JS + wasm as delivered (the brotli files `cargo xtask dist`
// writes, which a browser sending `Accept-Encoding: br, gzip` receives; gzip-only clients'
// figure too), and the time from navigation to the first live
// numbers in headless Chromium on loopback (token already in sessionStorage, as after a
// login; cold = new browser context, nothing cached; warm = reload with the HTTP cache).
// Run by bench/dashboard.sh; writes bench/results/dashboard.json.

import fs from 'node:fs'
import path from 'node:path'
import { ROOT, DIST, launch } from '../test/helpers.js'
import { startFootfall, CHROME_UA } from './server.js'

const RUNS = Number(process.env.RUNS || 7)
const BUDGET = 250 * 1024

const dir = path.join(DIST, 'dashboard')
const files = fs.readdirSync(dir)
/** Bytes delivered for `f` with `coding` (`br` or `gz`): its precompressed variant. */
const delivered = (f, coding) => {
  const variant = path.join(dir, `${f}.${coding}`)
  return fs.statSync(fs.existsSync(variant) ? variant : path.join(dir, f)).size
}
const wasm = files.find((f) => f.endsWith('.wasm'))
const js = files.find((f) => f.endsWith('.js'))
const size = {}
for (const coding of ['br', 'gz']) {
  const one = { html: delivered('index.html', coding), js: delivered(js, coding), wasm: delivered(wasm, coding) }
  one.total = one.html + one.js + one.wasm
  size[coding] = one
}

const server = await startFootfall()
await server.addSite('bench.test')
await server.track({ site: 'bench.test', event: 'page_view', page: '/', userId: 'b1' })
const browser = await launch()

/** ms from navigation start until the live status and the visitor count are shown. */
async function firstNumbers(page, go) {
  await go()
  await page.waitForSelector('#status[data-status=live]', { timeout: 20_000 })
  await page.waitForSelector('#active-visitors', { timeout: 20_000 })
  return page.evaluate(() => performance.now())
}

const cold = []
const warm = []
for (let i = 0; i < RUNS; i++) {
  const ctx = await browser.newContext({ userAgent: CHROME_UA })
  await ctx.addInitScript((t) => sessionStorage.setItem('footfall.adminToken', t), server.token)
  const page = await ctx.newPage()
  cold.push(await firstNumbers(page, () => page.goto(`${server.base}/dashboard/`)))
  warm.push(await firstNumbers(page, () => page.reload()))
  await ctx.close()
}
await browser.close()
await server.stop()

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1] }
}
const result = {
  deliveredBytes: size,
  budgetBytes: BUDGET,
  navigationToLiveMs: { cold: stats(cold), warm: stats(warm), runs: RUNS },
}
const kb = (n) => (n / 1024).toFixed(1) + ' KB'
const ms = (s) => `median ${s.median.toFixed(0)} ms (min ${s.min.toFixed(0)}, max ${s.max.toFixed(0)})`
for (const [coding, s] of Object.entries(size)) {
  console.log(`dashboard delivered (${coding}): page ${kb(s.html)} + js ${kb(s.js)} + wasm ${kb(s.wasm)} = ${kb(s.total)}`)
}
console.log(`budget ${kb(BUDGET)} delivered (br): ${size.br.total <= BUDGET ? 'ok' : 'OVER'}`)
console.log(`navigation → first live numbers, cold: ${ms(result.navigationToLiveMs.cold)}`)
console.log(`navigation → first live numbers, warm: ${ms(result.navigationToLiveMs.warm)}`)
const out = path.join(ROOT, 'bench/results')
fs.mkdirSync(out, { recursive: true })
fs.writeFileSync(path.join(out, 'dashboard.json'), JSON.stringify(result, null, 2) + '\n')
if (size.br.total > BUDGET) process.exit(1)
