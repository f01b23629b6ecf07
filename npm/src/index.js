// npm entry: `import { init, track, identify, consent } from "footfall"`.
// The wasm sits next to this file; bundlers (Vite, webpack 5, Rollup, esbuild) copy it as
// an asset because of the `new URL(..., import.meta.url)` pattern.
import loadWasm, { call } from '../build/wasm/footfall.js'
import { boot } from './core.js'

export { track, identify, consent, stats } from './core.js'

/**
 * Starts tracking. Returns at once; the promise resolves to whether this page is tracked
 * (false when ignored by the privacy rules, or when the wasm could not load). It never
 * rejects.
 */
export function init(options) {
  const o = options || {}
  return boot(
    () =>
      loadWasm({
        module_or_path: o.wasmUrl || new URL('./footfall.wasm', import.meta.url),
      }).then(() => (op, msg = '', a = 0, b = 0) => call(op, msg, a, b)),
    o
  )
}
