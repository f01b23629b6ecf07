#!/usr/bin/env node
// Gzip size of what a visitor downloads for Footfall's tracker (script + wasm) next to
// other trackers' browser bundles, all fetched from the npm registry in this same run
// (`npm pack`), so the comparison is of today's published versions.
//
//   cargo xtask dist && node bench/tracker-size.mjs
//
// Peers: the file a site ships (script-tag or minified browser build). umami publishes no
// tracker on npm, so it is listed as unavailable. Sizes are gzip -9.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import zlib from 'node:zlib'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
// GNU gzip -9 where installed (what `gzip -9` reports, and what static-file servers
// precompress with); Node's zlib otherwise. Compressors differ by a few bytes per file.
const gz = (buf) => {
  try {
    return execFileSync('gzip', ['-9', '-n', '-c'], { input: buf, maxBuffer: 1 << 30 }).length
  } catch {
    return zlib.gzipSync(buf, { level: 9 }).length
  }
}

const PEERS = [
  { name: 'posthog-js', files: ['dist/array.js'], what: 'script-tag core (array.js)' },
  { name: '@snowplow/browser-tracker', files: ['dist/index.umd.min.js'], what: 'minified UMD' },
  { name: '@plausible-analytics/tracker', files: ['plausible.js'], what: 'npm tracker' },
  {
    name: 'plausible-tracker',
    files: ['build/module/index.js', 'build/module/lib/request.js', 'build/module/lib/tracker.js'],
    what: 'legacy npm tracker, unminified ESM',
  },
  { name: '@umami/tracker', files: [], what: 'not published on npm' },
]

const trackerDir = path.join(root, 'dist/tracker')
/** The content-hashed wasm the script names (`footfall-<hash>.wasm`). */
const wasmName = () => fs.readdirSync(trackerDir).find((f) => /^footfall-[0-9a-f]+\.wasm$/.test(f))

function footfall() {
  const js = fs.readFileSync(path.join(trackerDir, 'footfall.js'))
  const wasm = fs.readFileSync(path.join(trackerDir, wasmName()))
  // What a browser receives (brotli, precompressed by `cargo xtask dist`), for the record;
  // the comparison below is gzip -9 of every tracker alike.
  const br = (f) => fs.statSync(path.join(trackerDir, f + '.br')).size
  return {
    raw: js.length + wasm.length,
    gzip: gz(js) + gz(wasm),
    detail: `js ${gz(js)} + wasm ${gz(wasm)}; delivered as brotli ${br('footfall.js') + br(wasmName())}`,
  }
}

function peer(tmp, p) {
  if (p.files.length === 0) return null
  let out
  try {
    out = execFileSync('npm', ['pack', '--silent', p.name], { cwd: tmp, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  } catch {
    return null
  }
  const tarball = out.trim().split('\n').pop()
  const version = tarball.match(/-(\d+\.\d+\.\d+[^/]*)\.tgz$/)?.[1] ?? '?'
  const dir = path.join(tmp, tarball.replace(/\.tgz$/, ''))
  fs.mkdirSync(dir)
  execFileSync('tar', ['-xzf', path.join(tmp, tarball), '-C', dir])
  let raw = 0
  let gzip = 0
  for (const f of p.files) {
    const buf = fs.readFileSync(path.join(dir, 'package', f))
    raw += buf.length
    gzip += gz(buf)
  }
  return { version, raw, gzip }
}

if (!fs.existsSync(trackerDir) || !wasmName()) {
  console.error('dist/tracker missing: run `cargo xtask dist` first')
  process.exit(1)
}
const ff = footfall()
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tracker-size-'))
const rows = [['footfall (this build)', '', ff.raw, ff.gzip, '1.00×', `script tag: ${ff.detail}`]]
try {
  for (const p of PEERS) {
    const r = peer(tmp, p)
    if (!r) {
      rows.push([p.name, '', '', '', 'n/a', p.what])
      continue
    }
    rows.push([p.name, r.version, r.raw, r.gzip, (r.gzip / ff.gzip).toFixed(2) + '×', p.what])
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true })
}

const head = ['tracker', 'version', 'bytes', 'gzip', 'vs footfall', 'what']
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)))
const line = (r) => r.map((c, i) => (i >= 2 && i <= 4 ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i]))).join('  ')
console.log(line(head))
console.log(widths.map((w) => '-'.repeat(w)).join('  '))
for (const r of rows) console.log(line(r))
