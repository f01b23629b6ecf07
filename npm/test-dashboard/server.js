// Runs the real `footfall standalone` binary for the dashboard's browser tests and bench:
// start, stop (SIGTERM, wait for the port to close), restart on the same port and data.

import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { ROOT, DIST, until, sleep } from '../test/helpers.js'

/** The binary: $FOOTFALL_BIN, else the debug build in $CARGO_TARGET_DIR (or target/). */
export function footfallBin() {
  if (process.env.FOOTFALL_BIN) return process.env.FOOTFALL_BIN
  const target = process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target')
  return path.join(target, 'debug', 'footfall')
}

/** A port that was free a moment ago. */
export async function freePort() {
  const srv = net.createServer()
  await new Promise((r) => srv.listen(0, '127.0.0.1', r))
  const port = srv.address().port
  await new Promise((r) => srv.close(r))
  return port
}

const portOpen = (port) =>
  new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => (s.destroy(), resolve(true)))
    s.once('error', () => resolve(false))
  })

/** A normal desktop Chrome: HeadlessChrome and curl user agents are filtered as bots. */
export const CHROME_UA =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'

/**
 * `footfall standalone` on a free port. `assetsDir`: the folder it serves the tracker, demo
 * and dashboard from (default dist/); `null` serves the copies embedded in the binary. `cwd`:
 * where it runs. `args`: more flags. `sites`: sites to register once it runs (events are
 * accepted only for registered sites; `default` and `demo` exist out of the box).
 */
export async function startFootfall({
  token = 'dash-test-token-0001',
  port,
  dataDir,
  assetsDir = DIST,
  cwd,
  args = ['--rate-limit', '0'],
  sites = [],
} = {}) {
  port = port || (await freePort())
  dataDir = dataDir || fs.mkdtempSync(path.join(os.tmpdir(), 'footfall-dash-'))
  const base = `http://127.0.0.1:${port}`
  const self = { base, port, dataDir, token, proc: null, log: '' }
  self.start = async () => {
    const assets = assetsDir ? ['--assets-dir', assetsDir] : []
    const proc = spawn(
      footfallBin(),
      ['standalone', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--admin-token', token,
        ...assets, ...args],
      { stdio: ['ignore', 'pipe', 'pipe'], cwd },
    )
    proc.stdout.on('data', (d) => (self.log += d))
    proc.stderr.on('data', (d) => (self.log += d))
    self.proc = proc
    await until(async () => {
      if (proc.exitCode !== null) throw new Error(`footfall exited ${proc.exitCode}:\n${self.log}`)
      try {
        return (await fetch(`${base}/livez`)).ok
      } catch {
        return false
      }
    }, 20_000, 'footfall to listen')
  }
  self.stop = async () => {
    const proc = self.proc
    if (!proc || proc.exitCode !== null) return
    const exited = new Promise((r) => proc.once('exit', r))
    proc.kill('SIGTERM')
    await Promise.race([exited, sleep(10_000)])
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL')
      await exited
    }
    await until(async () => !(await portOpen(port)), 10_000, 'port to close')
  }
  /** Sends one event over HTTP as a page would. */
  self.track = async (ev) => {
    const res = await fetch(`${base}/api/track`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'User-Agent': CHROME_UA },
      body: JSON.stringify({ userAgent: CHROME_UA, timezone: 'Europe/Berlin', ...ev }),
    })
    if (res.status >= 300) throw new Error(`track: ${res.status} ${await res.text()}`)
  }
  /** Registers a site (events are accepted only for registered sites). */
  self.addSite = async (site) => {
    const res = await fetch(`${base}/api/sites`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ site }),
    })
    if (res.status >= 300) throw new Error(`addSite: ${res.status} ${await res.text()}`)
  }
  self.stats = async (pathAndQuery) => {
    const res = await fetch(base + pathAndQuery, { headers: { Authorization: `Bearer ${token}` } })
    if (!res.ok) throw new Error(`${pathAndQuery}: ${res.status}`)
    return res.json()
  }
  await self.start()
  for (const site of sites) await self.addSite(site)
  return self
}
