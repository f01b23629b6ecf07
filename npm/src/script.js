// Script-tag entry:
//   <script defer src="https://stats.example.com/footfall.js" data-site="example.com"></script>
// Options are data-* attributes; the wasm is loaded from next to the script's own URL, so
// it works from the collector, a CDN path or any sub-folder. `window.footfall` is the API,
// and calls queued before the script loaded (`footfall.q`, see README) are replayed.
import { load } from './load.js'
import { boot, track, identify, consent, stats } from './core.js'

const api = { track, identify, consent, stats }

try {
  const script = document.currentScript
  const d = (script && script.dataset) || {}
  const src = (script && script.src) || location.href
  const earlier = window.footfall && window.footfall.q
  const footfall = (name, ...args) => api[name] && api[name](...args)
  window.footfall = Object.assign(footfall, api)
  // data-* attributes are the options (dataset names are the camelCase option names):
  // `data-respect-dnt` or `="true"` is on, `="false"` off; numbers stay strings (`| 0`).
  const o = {}
  for (const k in d) o[k] = d[k] == 'false' ? false : d[k] || true
  o.api = d.api == null ? new URL(src).origin : d.api
  boot(() => load(new URL('footfall.wasm', src)), o)
  if (earlier) for (const args of earlier) footfall(...args)
} catch (e) {}
