// The dashboard in real headless Chromium against a real `footfall standalone`:
// wrong token → message; log in; events sent over HTTP show up live (no reload); a server
// restart → "reconnecting", then live again; history shows what /api/stats/summary says;
// the Sites view adds and removes sites (events accepted only while registered).
// Screenshots go to artifacts/ (ignored by git).
//
// Needs: `cargo xtask dist` (dist/dashboard) and `cargo build -p footfall`, as the
// `dashboard browser` step of `cargo xtask test` (and .ci/test-dashboard.sh) does.

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { ROOT, DIST, launch, until } from '../test/helpers.js'
import { startFootfall, CHROME_UA } from './server.js'

const ARTIFACTS = path.join(ROOT, 'artifacts')
const SITE = 'shop.test'
let server, browser, page

before(async () => {
  assert.ok(fs.existsSync(path.join(DIST, 'dashboard/index.html')), 'run `cargo xtask dist` first')
  fs.mkdirSync(ARTIFACTS, { recursive: true })
  server = await startFootfall()
  // One event before anyone looks, so the site exists and the selector picks it.
  await server.addSite(SITE)
  await server.track({ site: SITE, event: 'page_view', page: '/', userId: 'seed' })
  browser = await launch()
  page = await browser.newPage({ userAgent: CHROME_UA, viewport: { width: 1280, height: 900 } })
  page.on('pageerror', (e) => console.error('pageerror:', e))
})

after(async () => {
  await browser?.close()
  await server?.stop()
})

const text = (sel) => page.locator(sel).textContent({ timeout: 1_000 }).catch(() => null)
const attr = (sel, name) => page.locator(sel).getAttribute(name, { timeout: 1_000 }).catch(() => null)
const number = async (sel) => Number(await attr(sel, 'data-value'))
const status = () => attr('#status', 'data-status')

test('a wrong token is refused with a clear message', async () => {
  await page.goto(`${server.base}/dashboard/`)
  await page.fill('#token', 'not-the-token')
  await page.click('button[type=submit]')
  await until(async () => /not accepted/.test((await text('#login-error')) || ''), 10_000, 'login error')
  assert.equal(await page.locator('#active-visitors').count(), 0)
})

test('logs in and shows live numbers that change without a reload', async () => {
  await page.fill('#token', server.token)
  await page.click('button[type=submit]')
  await until(async () => (await status()) === 'live', 15_000, 'live status')
  assert.equal(await page.locator('#site').inputValue(), SITE)
  await until(async () => (await number('#active-visitors')) >= 1, 10_000, 'first visitor')
  // Marks this document: a reload would lose it.
  await page.evaluate(() => (window.__sameDocument = true))
  const before = await number('#active-visitors')
  const feedBefore = await page.locator('#live-feed li').count()

  await server.track({ site: SITE, event: 'page_view', page: '/pricing', userId: 'alice' })
  await server.track({ site: SITE, event: 'page_view', page: '/pricing', userId: 'bob' })
  await server.track({ site: SITE, event: 'signup', page: '/pricing', userId: 'bob' })

  await until(async () => (await number('#active-visitors')) >= before + 2, 10_000, 'visitors to rise')
  await until(async () => (await page.locator('#live-feed li').count()) >= feedBefore + 3, 10_000, 'feed to grow')
  assert.match((await text('#live-feed li:first-child')) || '', /signup/)
  assert.match((await text('#top-pages')) || '', /\/pricing/)
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no reload happened')
  assert.ok((await number('#today-pageviews')) >= 3)
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-live.png'), fullPage: true })
})

test('a server restart shows reconnecting, then live again', async () => {
  await server.stop()
  await until(async () => ['reconnecting', 'offline'].includes(await status()), 10_000, 'reconnecting')
  const shown = await text('#status')
  assert.match(shown || '', /Reconnecting|Offline/)
  await server.start()
  await until(async () => (await status()) === 'live', 20_000, 'live again')
  // The fresh snapshot after the reconnect fills the view again.
  await until(async () => (await page.locator('#active-visitors').count()) === 1, 5_000, 'numbers')
  await server.track({ site: SITE, event: 'page_view', page: '/after-restart', userId: 'carol' })
  await until(async () => /after-restart/.test((await text('#live-feed')) || ''), 10_000, 'feed after restart')
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no reload happened')
})

test('history shows the numbers the REST API returns', async () => {
  const answered = page.waitForResponse((r) => r.url().includes('/api/stats/summary'))
  await page.click('#tab-history')
  const res = await answered
  const url = new URL(res.url())
  await until(async () => (await page.locator('#summary-pageviews').count()) === 1, 10_000, 'summary')
  // Ask the API ourselves, with the range the dashboard asked for.
  const api = await server.stats(url.pathname + url.search)
  assert.equal(api.site, SITE)
  assert.ok(api.pageviews >= 4, `pageviews ${api.pageviews}`)
  assert.equal(await number('#summary-pageviews'), api.pageviews)
  assert.equal(await number('#summary-visitors'), api.visitors)
  assert.equal(await number('#summary-visits'), api.visits)
  assert.equal(await number('#summary-bounce_rate'), api.bounceRate)
  await until(async () => /signup/.test((await text('#breakdown-event')) || ''), 10_000, 'events panel')
  await until(async () => (await page.locator('#history-series').count()) === 1, 10_000, 'series')
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-history.png'), fullPage: true })

  // 7 days: a new request, same numbers for a fresh site.
  await page.click('#range-7d')
  await until(async () => (await number('#summary-pageviews')) === api.pageviews, 10_000, '7-day summary')
})

test('the Sites view adds a site, events for it are accepted, and removes it', async () => {
  const NEW = 'added-from.dashboard.test'
  // The status /api/track answers for one event of `site`.
  const trackStatus = async (site) => {
    const res = await fetch(`${server.base}/api/track`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'User-Agent': CHROME_UA },
      body: JSON.stringify({ site, event: 'page_view', page: '/', userAgent: CHROME_UA }),
    })
    return { status: res.status, body: await res.text() }
  }
  const refused = await trackStatus(NEW)
  assert.equal(refused.status, 403, 'not registered yet')
  assert.match(refused.body, /unknown_site/)

  await page.click('#tab-sites')
  await until(async () => (await page.locator('#registry li').count()) >= 1, 10_000, 'registry list')
  const listed = await page.locator('#registry li').evaluateAll((lis) => lis.map((li) => li.dataset.site))
  for (const site of ['default', 'demo', SITE]) assert.ok(listed.includes(site), `${site} in ${listed}`)

  // A name the server refuses: its message, nothing added.
  await page.fill('#new-site', 'not a site!')
  await page.click('#add-site')
  await until(async () => (await text('#sites-error')) !== null, 10_000, 'error message')
  assert.match(await text('#sites-error'), /letters, digits/)
  assert.equal(await page.locator('#registry li').count(), listed.length, 'nothing added')

  await page.fill('#new-site', ` ${NEW.toUpperCase()} `)
  await page.click('#add-site')
  const row = `#registry li[data-site="${NEW}"]`
  await until(async () => (await page.locator(row).count()) === 1, 10_000, 'new site listed')
  assert.equal(await page.locator('#sites-error').count(), 0, 'the error is gone')
  const api = await server.stats('/api/sites')
  assert.ok(api.sites.some((s) => s.site === NEW), 'the server has it')

  const accepted = await trackStatus(NEW)
  assert.ok(accepted.status >= 200 && accepted.status < 300, `accepted: ${accepted.status} ${accepted.body}`)
  const unknown = await trackStatus('never-added.dashboard.test')
  assert.equal(unknown.status, 403)
  assert.match(unknown.body, /unknown_site/)
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-sites.png'), fullPage: true })

  await page.click(`${row} button.remove`)
  await until(async () => (await page.locator(row).count()) === 0, 10_000, 'site removed')
  assert.ok(!(await server.stats('/api/sites')).sites.some((s) => s.site === NEW))
  assert.equal((await trackStatus(NEW)).status, 403, 'refused again once removed')
})

test('phone width, then log out', async () => {
  await page.setViewportSize({ width: 390, height: 844 })
  await page.click('#tab-live')
  await until(async () => (await page.locator('#active-visitors').count()) === 1, 10_000, 'live view')
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  assert.ok(overflow <= 1, `no horizontal scrolling on a phone (overflow ${overflow}px)`)
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-phone.png'), fullPage: true })
  // Dark theme follows the system setting.
  const light = await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor)
  await page.emulateMedia({ colorScheme: 'dark' })
  const dark = await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor)
  assert.notEqual(dark, light, 'prefers-color-scheme: dark changes the colours')
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-phone-dark.png'), fullPage: true })
  await page.click('#logout')
  await until(async () => (await page.locator('#token').count()) === 1, 5_000, 'login form')
  assert.equal(await page.evaluate(() => sessionStorage.getItem('footfall.adminToken')), null)
})

test('a server without data explains how to install the tracker', async () => {
  const empty = await startFootfall({ token: 'empty-token-00000001' })
  try {
    const p = await browser.newPage({ userAgent: CHROME_UA })
    await p.goto(`${empty.base}/dashboard/`)
    await p.fill('#token', empty.token)
    await p.click('button[type=submit]')
    await p.waitForSelector('#install-hint', { timeout: 10_000 })
    const hint = await p.locator('#install-hint').textContent()
    assert.match(hint, new RegExp(`<script defer src="${empty.base}/footfall.js" data-site=`))
    await p.close()
  } finally {
    await empty.stop()
  }
})
