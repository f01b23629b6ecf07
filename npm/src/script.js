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
  // `data-respect-dnt` and `data-respect-dnt="true"` are on; absent or "false" is off.
  const flag = (v) => (v === undefined ? undefined : v !== 'false')
  const num = (v) => parseInt(v) || 0
  boot(() => load(new URL('footfall.wasm', src)), {
    site: d.site,
    api: d.api == null ? new URL(src).origin : d.api,
    respectDnt: flag(d.respectDnt),
    ignoreLocalhost: flag(d.ignoreLocalhost),
    autoPageviews: flag(d.autoPageviews),
    autoClicks: flag(d.autoClicks),
    requireConsent: flag(d.requireConsent),
    batchSize: num(d.batchSize),
    flushInterval: num(d.flushInterval),
    maxQueue: num(d.maxQueue),
  })
  if (earlier) for (const args of earlier) footfall(...args)
} catch (e) {}
