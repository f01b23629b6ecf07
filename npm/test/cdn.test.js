// Footfall behind a CDN: nginx (Debian's) runs deploy/nginx.conf — the file operators use,
// with only its `# deployment` lines (addresses, TLS, cache folder) swapped for loopback
// ones — in front of the real `footfall standalone`.
//
// - Rate limits and visitor ids use the client address from X-Forwarded-For because the
//   proxy is trusted (--trusted-proxies), and ignore it when it is not, or when a client
//   talks to footfall directly. Clients use distinct loopback addresses (127.0.0.3, .4, .5)
//   so the proxy (127.0.0.1) and each client are told apart.
// - The proxy caches the tracker (per content coding) and never /api/*.
// - The tracker works on a third origin: page, proxy and footfall on three ports.
//
// Needs nginx (`.ci/install.sh` installs it), `cargo xtask dist` and `cargo build -p footfall`.
import test, { before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { ROOT, APP_BODY, DESKTOP_UA, launch, startSite, until, visitApp, wire, sleep } from './helpers.js'
import { startFootfall, freePort } from '../test-dashboard/server.js'

const NGINX = process.env.NGINX || '/usr/sbin/nginx'
const PROXY = '127.0.0.1'
const ALICE = '127.0.0.3'
const BOB = '127.0.0.4'
const MALLORY = '127.0.0.5'

/** deploy/nginx.conf with its `# deployment` lines pointed at `upstream` and `port`. */
function edgeConfig(upstream, port, cacheDir) {
  const swapped = { upstream: 0, listen: 0, ssl: 0, cache: 0 }
  const conf = fs
    .readFileSync(path.join(ROOT, 'deploy/nginx.conf'), 'utf8')
    .split('\n')
    .map((line) => {
      if (!/;\s*# deployment$/.test(line)) return line
      const directive = line.trim().split(/\s+/)[0]
      if (directive === 'server') return swapped.upstream++, `    server ${upstream};`
      if (directive === 'listen') return swapped.listen++, `    listen ${PROXY}:${port};`
      if (directive.startsWith('ssl_')) return swapped.ssl++, ''
      if (directive === 'proxy_cache_path')
        return swapped.cache++, line.replace(/proxy_cache_path \S+/, `proxy_cache_path ${cacheDir}`).replace(/#.*/, '')
      throw new Error(`unexpected deployment line in deploy/nginx.conf: ${line}`)
    })
    .join('\n')
  assert.deepEqual(swapped, { upstream: 5, listen: 1, ssl: 2, cache: 1 }, 'deploy/nginx.conf changed shape')
  return conf
}

/** nginx with deploy/nginx.conf in front of `footfallPort`, as our own process. */
async function startEdge(footfallPort) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'footfall-nginx-'))
  const port = await freePort()
  fs.writeFileSync(path.join(dir, 'footfall.conf'), edgeConfig(`127.0.0.1:${footfallPort}`, port, path.join(dir, 'cache')))
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((t) => `${t}_temp_path ${path.join(dir, t)};`)
    .join('\n  ')
  fs.writeFileSync(
    path.join(dir, 'nginx.conf'),
    `${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes 1;
pid ${path.join(dir, 'nginx.pid')};
error_log ${path.join(dir, 'error.log')} warn;
events { worker_connections 256; }
http {
  access_log ${path.join(dir, 'access.log')};
  ${temp}
  include ${path.join(dir, 'footfall.conf')};
}
`
  )
  const args = ['-p', dir, '-c', path.join(dir, 'nginx.conf')]
  execFileSync(NGINX, [...args, '-t', '-q'], { stdio: 'inherit' })
  const proc = spawn(NGINX, [...args, '-g', 'daemon off;'], { stdio: ['ignore', 'inherit', 'inherit'] })
  const base = `http://${PROXY}:${port}`
  await until(
    () => new Promise((r) => net.connect(port, PROXY).once('connect', function () { this.destroy(); r(true) }).once('error', () => r(false))),
    10_000,
    'nginx to listen'
  )
  return {
    base,
    /** What nginx logged, for a failing test's message. */
    logs: () =>
      ['access.log', 'error.log']
        .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'))
        .join('\n'),
    stop: async () => {
      const exited = new Promise((r) => proc.once('exit', r))
      proc.kill('SIGTERM')
      await exited
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A page view as a plain client at `from` sends it (browser user agent, no user id). */
function track(base, from, site, extraHeaders = {}) {
  return wire(
    `${base}/api/track`,
    { 'Content-Type': 'application/json', 'User-Agent': DESKTOP_UA, ...extraHeaders },
    {
      method: 'POST',
      localAddress: from,
      body: JSON.stringify({ event: 'page_view', page: '/', site, timezone: 'Europe/Berlin' }),
    }
  ).then((r) => r.status)
}

const statuses = async (n, send) => {
  const out = []
  for (let i = 0; i < n; i++) out.push(await send(i))
  return out
}

test('nginx is installed', () => {
  assert.ok(fs.existsSync(NGINX), `${NGINX} missing: run .ci/install.sh (apt-get install nginx)`)
})

test('trusted proxy: client addresses from X-Forwarded-For; the tracker cached, /api/* never', async () => {
  const footfall = await startFootfall({
    token: 'cdn-test-token-0001',
    args: ['--trusted-proxies', PROXY, '--rate-limit', '5'],
    sites: ['trusted.test'],
  })
  let edge
  try {
    edge = await startEdge(footfall.port)
    // Two visitors behind the proxy are two visitors.
    assert.equal(await track(edge.base, ALICE, 'trusted.test'), 200)
    assert.equal(await track(edge.base, BOB, 'trusted.test'), 200)
    // Talking to footfall directly, a client's own X-Forwarded-For is not believed: Mallory
    // claiming to be Alice is a third visitor.
    assert.equal(await track(footfall.base, MALLORY, 'trusted.test', { 'X-Forwarded-For': ALICE }), 200)
    const s = await footfall.stats('/api/stats/summary?site=trusted.test')
    assert.equal(s.visitors, 3, JSON.stringify(s))

    // Rate limits per real client: Alice uses up her 5, Bob still gets through.
    assert.deepEqual(await statuses(5, () => track(edge.base, ALICE, 'trusted.test')), [200, 200, 200, 200, 429])
    assert.equal(await track(edge.base, BOB, 'trusted.test'), 200)
    // Bob cannot escape his bucket by inventing X-Forwarded-For addresses: the proxy appends
    // the address it saw, and footfall reads the chain from the right.
    const spoofed = await statuses(4, (i) => track(edge.base, BOB, 'trusted.test', { 'X-Forwarded-For': `198.51.100.${i}` }))
    assert.deepEqual(spoofed, [200, 200, 200, 429])
    // Nor can Mallory, directly.
    const direct = await statuses(5, (i) => track(footfall.base, MALLORY, 'trusted.test', { 'X-Forwarded-For': `203.0.113.${i}` }))
    assert.deepEqual(direct, [200, 200, 200, 200, 429])

    // The tracker script and wasm: a miss, then hits, one entry per coding.
    const script = (await wire(edge.base + '/footfall.js', { 'Accept-Encoding': 'identity' })).body.toString()
    const wasm = /footfall-[0-9a-f]{10}\.wasm/.exec(script)?.[0]
    assert.ok(wasm)
    for (const p of ['/footfall.js', `/${wasm}`]) {
      for (const coding of ['br', 'gzip']) {
        const accept = { 'Accept-Encoding': coding === 'br' ? 'gzip, deflate, br' : 'gzip' }
        const first = await wire(edge.base + p, accept)
        const second = await wire(edge.base + p, accept)
        assert.equal(first.status, 200, p)
        assert.notEqual(first.headers['x-cache-status'], 'HIT', `${p} ${coding}: first request`)
        assert.equal(second.headers['x-cache-status'], 'HIT', `${p} ${coding}: cached by the proxy`)
        assert.equal(second.headers['content-encoding'], coding, p)
        assert.deepEqual(second.body, first.body)
        assert.equal(second.headers['access-control-allow-origin'], '*')
        assert.equal(second.headers['cross-origin-resource-policy'], 'cross-origin')
      }
    }

    // /api/* is never cached: fresh answers every time, no cache status.
    const h1 = await wire(edge.base + '/api/health')
    await sleep(5)
    const h2 = await wire(edge.base + '/api/health')
    assert.equal(h2.headers['x-cache-status'], undefined)
    assert.equal(h2.headers['cache-control'], 'no-store')
    assert.notEqual(JSON.parse(h1.body).timestamp, JSON.parse(h2.body).timestamp)
    const stats = await wire(edge.base + '/api/stats/summary?site=trusted.test', {
      Authorization: `Bearer ${footfall.token}`,
    })
    assert.equal(stats.status, 200)
    assert.equal(stats.headers['x-cache-status'], undefined)
    assert.equal(stats.headers['cache-control'], 'no-store')
    // The dashboard comes through the proxy too.
    assert.equal((await wire(edge.base + '/dashboard/')).status, 200)
  } finally {
    await edge?.stop()
    await footfall.stop()
  }
})

test('untrusted proxy: X-Forwarded-For is ignored, everyone behind it is one client', async () => {
  const footfall = await startFootfall({
    token: 'cdn-test-token-0001',
    args: ['--rate-limit', '5'],
    sites: ['untrusted.test'],
  })
  let edge
  try {
    edge = await startEdge(footfall.port)
    assert.equal(await track(edge.base, ALICE, 'untrusted.test'), 200)
    assert.equal(await track(edge.base, BOB, 'untrusted.test'), 200)
    const s = await footfall.stats('/api/stats/summary?site=untrusted.test')
    assert.equal(s.visitors, 1, 'both look like the proxy')
    // One bucket for everyone behind the proxy: Alice's requests use up Bob's.
    assert.deepEqual(await statuses(3, () => track(edge.base, ALICE, 'untrusted.test')), [200, 200, 200])
    assert.equal(await track(edge.base, BOB, 'untrusted.test'), 429)
  } finally {
    await edge?.stop()
    await footfall.stop()
  }
})

test('the script tag on a third origin, through the proxy', async () => {
  const footfall = await startFootfall({
    token: 'cdn-test-token-0001',
    args: ['--trusted-proxies', PROXY],
    sites: ['cdn.test'],
  })
  let edge, site, browser
  try {
    edge = await startEdge(footfall.port)
    site = await startSite({
    '/': {
      type: 'text/html; charset=utf-8',
      body: `<!doctype html><html><head><title>Home</title>
<script defer src="${edge.base}/footfall.js" data-site="cdn.test"></script>
</head><body>${APP_BODY}</body></html>`,
    },
    })
    browser = await launch({ userAgent: DESKTOP_UA })
    const origins = new Set([site.base, edge.base, footfall.base].map((u) => new URL(u).origin))
    assert.equal(origins.size, 3)
    await visitApp(browser, site.base + '/', () => footfall.stats('/api/stats/summary?site=cdn.test')).catch(
      (e) => {
        throw new Error(`${e.message}\nnginx:\n${edge.logs()}\nfootfall:\n${footfall.log}`)
      }
    )
  } finally {
    await browser?.close()
    await site?.close()
    await edge?.stop()
    await footfall.stop()
  }
})
