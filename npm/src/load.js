// Instantiates the tracker's wasm with wasm-bindgen's shims (bundler target,
// `footfall_bg.js`) and resolves to its one export, `call(op, msg, a, b)`.
// A plain `fetch` + `WebAssembly.instantiate` works whatever MIME type the server sends.
import * as shims from '../build/wasm/footfall_bg.js'

export const load = (url) =>
  fetch(url)
    .then((r) => r.arrayBuffer())
    .then((bytes) => WebAssembly.instantiate(bytes, { './footfall_bg.js': shims }))
    .then(({ instance }) => {
      shims.__wbg_set_wasm(instance.exports)
      instance.exports.__wbindgen_start()
      return (op, msg = '', a = 0, b = 0) => shims.call(op, msg, a, b)
    })
