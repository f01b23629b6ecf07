// `npm pack` produces a tarball that installs into a fresh project and imports from ESM.
// Needs `cargo xtask dist` first (it builds npm/dist/).
import test from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ROOT } from './helpers.js'

const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })

test('npm pack → install into a scratch project → import from ESM', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'footfall-pack-'))
  try {
    const out = run('npm', ['pack', '--silent', '--pack-destination', tmp], path.join(ROOT, 'npm'))
    const tarball = path.join(tmp, out.trim().split('\n').pop())
    const listing = run('tar', ['-tzf', tarball], tmp).split('\n').filter(Boolean).sort()
    assert.deepEqual(listing, [
      'package/README.md',
      'package/dist/footfall.script.js',
      'package/dist/footfall.wasm',
      'package/dist/index.js',
      'package/index.d.ts',
      'package/package.json',
    ])
    const app = path.join(tmp, 'app')
    fs.mkdirSync(app)
    fs.writeFileSync(path.join(app, 'package.json'), '{"name":"app","private":true,"type":"module"}')
    run('npm', ['install', '--no-audit', '--no-fund', '--offline', tarball], app)
    fs.writeFileSync(
      path.join(app, 'main.mjs'),
      `import { init, track, identify, consent, stats } from 'footfall'
import { createRequire } from 'node:module'
const wasm = createRequire(import.meta.url).resolve('footfall/footfall.wasm')
console.log(JSON.stringify({
  api: [typeof init, typeof track, typeof identify, typeof consent, typeof stats],
  queued: track('before_init') === undefined,
  stats: stats(),
  wasm: wasm.endsWith('footfall.wasm'),
}))`
    )
    const result = JSON.parse(run('node', ['main.mjs'], app))
    assert.deepEqual(result.api, ['function', 'function', 'function', 'function', 'function'])
    assert.equal(result.queued, true)
    assert.equal(result.stats.started, false)
    assert.equal(result.wasm, true)
    const types = fs.readFileSync(path.join(app, 'node_modules/footfall/index.d.ts'), 'utf8')
    assert.match(types, /export function init\(options\?: FootfallOptions\): Promise<boolean>/)
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
})
