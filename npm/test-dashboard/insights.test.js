// The history view's analytics in real headless Chromium against a real `footfall standalone`
// (issue 13): visits, bounce rate, duration and views per visit equal the stats API; a row
// click filters every panel to the API's filtered answer, the chip inverts and goes away, a
// bookmarked URL restores range, filters and comparison; comparison shows % per card and a
// dashed second line; goals are defined in the page and convert when a tracker page sends a
// matching page view; a panel downloads as the API's CSV; a share link opens the numbers
// read-only in a fresh browser context, and stops working once revoked.
// Screenshots go to artifacts/ (ignored by git).
//
// Needs: `cargo xtask dist` (dist/) and `cargo build -p footfall` (.ci/test-dashboard.sh does
// both).

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { ROOT, DIST, launch, startSite, until } from '../test/helpers.js'
import { startFootfall, CHROME_UA } from './server.js'

const ARTIFACTS = path.join(ROOT, 'artifacts')
const SITE = 'insights.test'
const DAY = 86_400_000
// Whole UTC days (the browser runs in UTC): the range shown is yesterday, compared with the
// day before.
const TODAY = Math.floor(Date.now() / DAY) * DAY
const YESTERDAY = TODAY - DAY
const BEFORE = TODAY - 2 * DAY
const ymd = (ms) => new Date(ms).toISOString().slice(0, 10)
const RANGE = `${ymd(YESTERDAY)}..${ymd(YESTERDAY)}`
const SPAN = `site=${SITE}&from=${YESTERDAY}&to=${TODAY}`

let server, browser, context, page, site

/** The customer's site on another origin: one page with the tracker's script tag pointing at
 * Footfall (flushing quickly, so the test need not wait for the default 5 s). */
const thanksPage = () => ({
  '/thanks/pro': {
    type: 'text/html; charset=utf-8',
    body: `<!doctype html><html><head><title>thanks</title>
<script defer src="${server.base}/footfall.js" data-site="${SITE}" data-flush-interval="250"></script>
</head><body><h1>Thank you</h1></body></html>`,
  },
})

/** One visit: page views (and events) `gapS` seconds apart from `at`. */
async function visit(session, user, at, steps, extra = {}) {
  let t = at
  for (const step of steps) {
    const [event, page, props] = typeof step === 'string' ? ['page_view', step] : step
    await server.track({ site: SITE, event, page, sessionId: session, userId: user, timestamp: t, props, ...extra })
    t += 20_000
  }
}

before(async () => {
  assert.ok(fs.existsSync(path.join(DIST, 'dashboard/index.html')), 'run `cargo xtask dist` first')
  fs.mkdirSync(ARTIFACTS, { recursive: true })
  // `sites`: registered up front where the server accepts events only for known sites.
  server = await startFootfall({ token: 'insights-test-token-01', sites: [SITE] })
  // Yesterday: three visits. s1 (google) reads / then /pricing then signs up (2 views, 40 s);
  // s2 bounces on /pricing; s3 (from the US) reads two blog pages (2 views, 20 s).
  const h = (n) => YESTERDAY + n * 3_600_000
  await visit('s1', 'alice', h(9), ['/', '/pricing', ['signup', '/pricing', { plan: 'pro' }]],
    { referrer: 'https://www.google.com/search' })
  await visit('s2', 'bob', h(10), ['/pricing'])
  await visit('s3', 'carol', h(11), ['/blog', '/blog/a'], { timezone: 'America/New_York' })
  // The day before: one bounce.
  await visit('s0', 'dave', BEFORE + 9 * 3_600_000, ['/'])
  // A desktop UA for the tracker page: HeadlessChrome is dropped as a bot, and a per-context
  // UA does not reach sendBeacon, so the launch flag it is.
  browser = await launch({ userAgent: CHROME_UA })
  context = await browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: 'UTC', acceptDownloads: true })
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.base })
  page = await context.newPage()
  page.on('pageerror', (e) => console.error('pageerror:', e))
  site = await startSite(thanksPage())
})

after(async () => {
  await browser?.close()
  await site?.close()
  await server?.stop()
})

const attr = (sel, name, p = page) => p.locator(sel).first().getAttribute(name, { timeout: 1_000 }).catch(() => null)
const value = async (sel, p = page) => Number(await attr(sel, 'data-value', p))
const settled = (p = page) =>
  until(async () => (await p.locator('main.history[aria-busy="false"] #summary-visits').count()) === 1, 15_000, 'history to settle')
const filterQuery = (filters) => filters.map((f) => `&filter=${encodeURIComponent(f)}`).join('')
const METRICS = [['visitors', 'visitors'], ['pageviews', 'pageviews'], ['visits', 'visits'],
  ['bounce_rate', 'bounceRate'], ['visit_duration', 'visitDuration'], ['views_per_visit', 'viewsPerVisit']]

/** Every top card shows what the summary API answers for the same range and filters. */
async function cardsEqualApi(filters = [], p = page) {
  const api = await server.stats(`/api/stats/summary?${SPAN}${filterQuery(filters)}`)
  for (const [card, field] of METRICS) {
    await until(async () => (await value(`#summary-${card}`, p)) === api[field], 10_000,
      `card ${card} = ${api[field]} (shows ${await value(`#summary-${card}`, p)})`)
  }
  return api
}

/** A panel's rows are the breakdown API's rows, in order. */
async function panelEqualsApi(dimension, filters = [], p = page, id = dimension) {
  const api = await server.stats(`/api/stats/breakdown?${SPAN}&dimension=${dimension}&limit=10${filterQuery(filters)}`)
  const want = api.rows.map((r) => `${r.value}=${r.count}`).join(' ')
  const shown = async () => (await p.locator(`#breakdown-${id} tbody tr`).evaluateAll((trs) =>
    trs.map((tr) => `${tr.dataset.key}=${tr.querySelector('td[data-value]').dataset.value}`))).join(' ')
  await until(async () => (await shown()) === want, 10_000, `${dimension} panel = ${want} (shows ${await shown()})`)
  return api
}

test('the history view shows visits, bounce rate, duration and views per visit as the API does', async () => {
  await page.goto(`${server.base}/dashboard/?site=${SITE}&view=history&range=${RANGE}`)
  await page.fill('#token', server.token)
  await page.click('button[type=submit]')
  await settled()
  const api = await cardsEqualApi()
  // Hand-computed: 3 visits, s2 bounced, durations 40 + 0 + 20 s, 5 page views.
  assert.deepEqual([api.visits, api.bounceRate, api.visitDuration, api.viewsPerVisit, api.pageviews],
    [3, 33.3, 20, 1.67, 5])
  assert.equal(await page.locator('#summary-bounce_rate').textContent(), '33%')
  assert.equal(await page.locator('#summary-visit_duration').textContent(), '20s')
  await panelEqualsApi('entry_page')
  await panelEqualsApi('exit_page')
  await panelEqualsApi('page')
  // No geoip database: no region or city panel; no UTM either.
  assert.equal(await page.locator('#breakdown-region, #breakdown-city, #breakdown-utm_medium').count(), 0)
  // The bookmarkable URL kept what was asked.
  assert.match(page.url(), new RegExp(`range=${RANGE.replace(/\./g, '\\.')}`))
})

test('a row filters every panel and the chart; the chip inverts and is removed', async () => {
  const seriesBefore = await page.locator('#history-series').getAttribute('aria-label').catch(() => null)
  await page.locator('#breakdown-page button.pick', { hasText: /^\/pricing$/ }).click()
  await until(async () => (await page.locator('#filters li[data-filter="page:/pricing"]').count()) === 1, 5_000, 'chip')
  assert.match(page.url(), /filter=page%3A%2Fpricing/)
  await settled()
  const filtered = await cardsEqualApi(['page:/pricing'])
  // Visits that saw /pricing: s1 and s2.
  assert.equal(filtered.visits, 2)
  await panelEqualsApi('referrer', ['page:/pricing'])
  await panelEqualsApi('entry_page', ['page:/pricing'])
  await panelEqualsApi('country', ['page:/pricing'])
  const chart = await page.locator('#history-series svg').getAttribute('aria-label')
  assert.notEqual(chart, seriesBefore, 'the chart redrew for the filter')

  // A bookmark of this view opens it again: range, filter, numbers.
  await page.reload()
  await settled()
  assert.equal(await page.locator('#filters li[data-filter="page:/pricing"]').count(), 1)
  await cardsEqualApi(['page:/pricing'])

  // "is" → "is not".
  await page.locator('#filters li .op').click()
  await until(async () => (await page.locator('#filters li[data-filter="page!:/pricing"]').count()) === 1, 5_000, 'is not')
  await settled()
  await cardsEqualApi(['page!:/pricing'])
  await page.screenshot({ path: path.join(ARTIFACTS, 'insights-filtered.png'), fullPage: true })

  // × removes it: back to everything, and out of the URL.
  await page.locator('#filters li .remove').click()
  await until(async () => (await page.locator('#filters li').count()) === 0, 5_000, 'chip gone')
  assert.doesNotMatch(page.url(), /filter=/)
  await settled()
  await cardsEqualApi()
})

test('rows are buttons the keyboard reaches', async () => {
  const row = page.locator('#breakdown-referrer button.pick').first()
  const key = await row.evaluate((b) => b.closest('tr').dataset.key)
  await row.focus()
  await page.keyboard.press('Enter')
  await until(async () => (await page.locator(`#filters li[data-filter="referrer:${key}"]`).count()) === 1, 5_000, 'keyboard filter')
  await settled()
  await cardsEqualApi([`referrer:${key}`])
  await page.locator('#filters li .remove').focus()
  await page.keyboard.press('Enter')
  await until(async () => (await page.locator('#filters li').count()) === 0, 5_000, 'chip removed by keyboard')
  await settled()
})

test('a custom property is broken down by name, and its rows filter too', async () => {
  await page.fill('#prop-name', 'plan')
  await page.click('#prop-show')
  await until(async () => /prop=plan/.test(page.url()), 5_000, 'prop in the URL')
  await settled()
  const api = await panelEqualsApi('prop.plan', [], page, 'prop')
  assert.deepEqual(api.rows, [{ value: 'pro', count: 1 }])
  await page.locator('#breakdown-prop button.pick', { hasText: 'pro' }).click()
  await until(async () => (await page.locator('#filters li[data-filter="prop.plan:pro"]').count()) === 1, 5_000, 'prop filter')
  await settled()
  // The visit that signed up with plan=pro: alice's.
  const filtered = await cardsEqualApi(['prop.plan:pro'])
  assert.equal(filtered.visits, 1)
  await page.locator('#filters li .remove').click()
  await settled()
})

test('comparison shows the change on every card and a second line on the chart', async () => {
  await page.selectOption('#compare', 'previous')
  await until(async () => (await page.locator('#summary-visits-change').count()) === 1, 10_000, 'changes')
  await settled()
  assert.match(page.url(), /compare=previous/)
  const api = await server.stats(`/api/stats/summary?${SPAN}&compare=previous`)
  for (const [card, field] of METRICS) {
    const prev = api.previous[field]
    const want = prev === 0 ? (api[field] === 0 ? '0.0' : '') : ((api[field] - prev) * 100 / prev).toFixed(1)
    await until(async () => (await attr(`#summary-${card}-change`, 'data-change')) === want, 10_000,
      `${card} change ${want}`)
  }
  // 3 visits against 1: +200 %, good; the bounce rate fell from 100 % to 33.3 %: good too.
  assert.equal(await attr('#summary-visits-change', 'data-change'), '200.0')
  assert.match(await attr('#summary-visits-change', 'class'), /good/)
  assert.match(await attr('#summary-bounce_rate-change', 'class'), /good/)
  assert.match(await page.locator('#summary-visits-change').textContent(), /↑ 200%/)
  await until(async () => (await page.locator('#history-series .series.previous polyline').count()) === 1, 5_000, 'dashed line')
  assert.equal(await page.locator('#history-series .series.current polyline').count(), 1)
  const dash = await page.locator('#history-series .series.previous polyline').evaluate((e) => getComputedStyle(e).strokeDasharray)
  assert.notEqual(dash, 'none', 'the comparison line is dashed')
  // A card picks the chart's metric.
  await page.click('#summary-bounce_rate >> xpath=..')
  await until(async () => /Bounce rate/.test(await page.locator('#series-title').textContent()), 5_000, 'chart metric')
  assert.match(page.url(), /metric=bounce_rate/)
  await page.screenshot({ path: path.join(ARTIFACTS, 'insights-compare.png'), fullPage: true })
  await page.selectOption('#compare', 'off')
  await until(async () => (await page.locator('#summary-visits-change').count()) === 0, 10_000, 'comparison off')
  assert.equal(await page.locator('#history-series .series.previous').count(), 0)
})

test('a panel downloads as the CSV the API gives for the same range and filters', async () => {
  await page.locator('#breakdown-page button.pick', { hasText: /^\/pricing$/ }).click()
  await settled()
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.locator('#breakdown-entry_page >> xpath=ancestor::section').locator('button.export').click(),
  ])
  const file = fs.readFileSync(await download.path(), 'utf8')
  const res = await fetch(`${server.base}/api/stats/breakdown?${SPAN}&dimension=entry_page&limit=1000&format=csv&filter=${encodeURIComponent('page:/pricing')}`,
    { headers: { Authorization: `Bearer ${server.token}` } })
  assert.equal(res.status, 200)
  assert.equal(file, await res.text())
  assert.match(download.suggestedFilename(), new RegExp(`^footfall-${SITE}-entry_page-${ymd(YESTERDAY)}-${ymd(YESTERDAY)}\\.csv$`))
  await page.locator('#filters li .remove').click()
  await settled()

  // The admin's raw export: every stored event of the range, one JSON object per line.
  const [raw] = await Promise.all([page.waitForEvent('download'), page.click('#export-raw')])
  const lines = fs.readFileSync(await raw.path(), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
  const summary = await server.stats(`/api/stats/summary?${SPAN}`)
  assert.equal(lines.length, summary.events)
  assert.deepEqual([...new Set(lines.map((e) => e.site))], [SITE])
  assert.ok(lines.every((e) => e.ts >= YESTERDAY && e.ts < TODAY), 'only the range')
  assert.match(raw.suggestedFilename(), /^footfall-insights\.test-events-.*\.ndjson$/)
})

test('goals are defined in the dashboard and convert when a matching event arrives', async () => {
  // An event goal: yesterday had one signup (alice).
  await page.selectOption('#goal-kind', 'event')
  await page.fill('#goal-value', 'signup')
  await page.click('#goal-add')
  await until(async () => (await page.locator('#goals tr[data-goal="signup"]').count()) === 1, 10_000, 'signup goal')
  await settled()
  let api = await server.stats(`/api/stats/goals?${SPAN}`)
  const signup = api.goals.find((g) => g.goal.value === 'signup')
  assert.deepEqual([signup.visitors, signup.conversions, signup.conversionRate], [1, 1, 33.3])
  assert.equal(await value('#goals tr[data-goal="signup"] .conversions'), 1)
  assert.equal(await value('#goals tr[data-goal="signup"] .rate'), 33.3)

  // A page goal for today, which nobody has reached yet.
  await page.click('#range-today')
  await page.selectOption('#goal-kind', 'page')
  await page.fill('#goal-value', '/thanks/*')
  await page.click('#goal-add')
  const row = '#goals tr[data-goal="/thanks/*"]'
  await until(async () => (await page.locator(row).count()) === 1, 10_000, 'page goal')
  await settled()
  assert.equal(await value(`${row} .conversions`), 0)

  // A visitor reaches /thanks/pro on the site (another origin, the real tracker).
  const visitor = await browser.newPage()
  await visitor.goto(`${site.base}/thanks/pro`)
  await until(async () => {
    const g = await server.stats(`/api/stats/goals?site=${SITE}&from=${TODAY}&to=${Date.now() + 1000}`)
    return g.goals.find((x) => x.goal.value === '/thanks/*')?.conversions === 1
  }, 15_000, 'the tracker page view to be stored')
  await visitor.close()
  await page.click('#refresh')
  await until(async () => (await value(`${row} .conversions`)) === 1, 10_000, 'the goal to convert')
  assert.equal(await value(`${row} .visitors`), 1)
  await page.screenshot({ path: path.join(ARTIFACTS, 'insights-goals.png'), fullPage: true })

  // A goal row is a filter too.
  await page.locator(`${row} button.pick`).click()
  await until(async () => (await page.locator('#filters li[data-filter="page:/thanks/*"]').count()) === 1, 5_000, 'goal filter')
  await page.locator('#filters li .remove').click()
  // Deleting it.
  await page.locator(`${row} .goal-delete`).click()
  await until(async () => (await page.locator(row).count()) === 0, 10_000, 'goal deleted')
  api = await server.stats(`/api/goals?site=${SITE}`)
  assert.deepEqual(api.goals.map((g) => g.value), ['signup'])
})

test('a share link opens the numbers read-only without a token, until it is revoked', async () => {
  await page.goto(`${server.base}/dashboard/?site=${SITE}&view=history&range=${RANGE}`)
  await settled()
  await page.click('#share-open')
  await page.fill('#share-label', 'team')
  await page.click('#share-create')
  const link = page.locator('.share-link', { hasText: 'team' })
  await until(async () => (await link.count()) === 1, 10_000, 'share link')
  const url = await link.locator('.share-url').inputValue()
  assert.ok(url.startsWith(`${server.base}/dashboard/?site=${SITE}#share=`), url)
  await link.locator('.share-copy').click()
  await until(async () => (await link.locator('.share-copy').textContent()) === 'Copied', 5_000, 'copied')
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), url)

  // A fresh context: no session storage, no admin token anywhere.
  const guest = await browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: 'UTC' })
  const p = await guest.newPage()
  p.on('pageerror', (e) => console.error('pageerror (share):', e))
  const requests = []
  p.on('request', (r) => requests.push(r.headers().authorization || ''))
  const [base, fragment] = url.split('#')
  await p.goto(`${base}&view=history&range=${RANGE}#${fragment}`)
  await settled(p)
  await cardsEqualApi([], p)
  await panelEqualsApi('page', [], p)
  assert.equal(await p.locator('#read-only').count(), 1)
  // The live view by ticket, for this site only.
  await until(async () => (await attr('#status', 'data-status', p)) === 'live', 15_000, 'share link live')
  assert.equal(await p.locator('#site-name').textContent(), SITE)
  // No admin controls: no site switch, log-out, Sites view, share, raw export, goal editing.
  for (const sel of ['#site', '#logout', '#tab-sites', '#share-open', '#export-raw', '#goal-form', '#goal-add', '.goal-delete']) {
    assert.equal(await p.locator(sel).count(), 0, `${sel} hidden`)
  }
  assert.equal(await p.locator('#goals tr[data-goal="signup"]').count(), 1, 'goals are readable')
  assert.ok(!requests.some((a) => a.includes(server.token)), 'the admin token is never sent')
  // Filtering works read-only too.
  await p.locator('#breakdown-page button.pick', { hasText: /^\/pricing$/ }).click()
  await settled(p)
  await cardsEqualApi(['page:/pricing'], p)
  await p.screenshot({ path: path.join(ARTIFACTS, 'insights-shared.png'), fullPage: true })

  // Revoked: the next load says so and shows nothing.
  await link.locator('.share-revoke').click()
  await until(async () => (await link.count()) === 0, 10_000, 'revoked')
  await p.reload()
  await until(async () => /not valid/.test((await p.locator('#login-error').textContent({ timeout: 1_000 }).catch(() => '')) || ''), 10_000, 'refused')
  assert.equal(await p.locator('#summary-visits').count(), 0)
  await guest.close()
})

test('today on the live view has the visit figures; a live row opens the filtered history', async () => {
  await server.track({ site: SITE, event: 'page_view', page: '/live', sessionId: 'l1', userId: 'erin' })
  await page.click('#tab-live')
  await until(async () => (await page.locator('#today-visits').count()) === 1, 15_000, 'live cards')
  // Today (UTC) live equals the summary of today, visit figures included (refreshed every 5 s).
  const today = async () => server.stats(`/api/stats/summary?site=${SITE}&from=${TODAY}&to=${Date.now() + 1000}`)
  await until(async () => (await today()).visits >= 2, 10_000, 'today has the tracker visit and this one')
  for (const [card, field] of METRICS) {
    await until(async () => (await value(`#today-${card}`)) === (await today())[field], 15_000,
      `live today ${card} = ${(await today())[field]} (shows ${await value(`#today-${card}`)})`)
  }
  await until(async () => (await page.locator('#top-pages button.pick', { hasText: '/live' }).count()) === 1, 10_000, 'live row')
  await page.locator('#top-pages button.pick', { hasText: '/live' }).click()
  await until(async () => (await page.locator('#filters li[data-filter="page:/live"]').count()) === 1, 10_000, 'history filtered')
  assert.match(page.url(), /view=history/)
  assert.doesNotMatch(page.url(), /range=/, 'today is the default range')
})

test('phone width and dark mode with filters and comparison', async () => {
  await page.selectOption('#compare', 'previous')
  await page.setViewportSize({ width: 390, height: 844 })
  await settled()
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  assert.ok(overflow <= 1, `no horizontal scrolling on a phone (overflow ${overflow}px)`)
  await page.emulateMedia({ colorScheme: 'dark' })
  await page.screenshot({ path: path.join(ARTIFACTS, 'insights-phone-dark.png'), fullPage: true })
  await page.emulateMedia({ colorScheme: 'light' })
  await page.setViewportSize({ width: 1280, height: 900 })
})
