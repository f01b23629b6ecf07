// npm entry: `import { init, track, identify, consent } from "footfall"`.
// The wasm sits next to this file; bundlers (Vite, webpack 5, Rollup, esbuild) copy it as
// an asset because of the `new URL(..., import.meta.url)` pattern.
import { load } from './load.js'
import { boot } from './core.js'

export { track, identify, consent, stats } from './core.js'

/**
 * Starts tracking. Returns at once; the promise resolves to whether this page is tracked
 * (false when ignored by the privacy rules, or when the wasm could not load). It never
 * rejects.
 */
export function init(options) {
  const o = options || {}
  return boot(() => load(o.wasmUrl || new URL('./footfall.wasm', import.meta.url)), o)
}
