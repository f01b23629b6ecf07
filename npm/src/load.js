// Instantiates the tracker's wasm and resolves to `call(op, msg, a, b)`. The interface is
// hand-written, not wasm-bindgen's (sdk-wasm/src/web/abi.rs): the message's UTF-16 code
// units go into the wasm's buffer (`io(units)` makes room and says where), `call(op, a, b)`
// returns the length of its UTF-8 result, found at `out()`. The imports are the clock, the random seed and
// a storage write that never throws (keys as in sdk-wasm/src/web/storage.rs).
// A plain `fetch` + `WebAssembly.instantiate` works whatever MIME type the server sends.
export const load = (url) => {
  let x
  const bytes = (at, len) => new Uint8Array(x.memory.buffer, at, len)
  const text = (at, len) => new TextDecoder().decode(bytes(at, len))
  const store = (local, site, siteLen, value, len) => {
    try {
      const s = local ? localStorage : sessionStorage
      const key = (local ? 'footfall:queue:' : 'footfall:session:') + text(site, siteLen)
      len ? s.setItem(key, text(value, len)) : s.removeItem(key)
      return 1
    } catch (e) {
      return 0
    }
  }
  return fetch(url)
    .then((r) => r.arrayBuffer())
    .then((b) => WebAssembly.instantiate(b, { f: { now: Date.now, random: Math.random, store } }))
    .then(({ instance }) => {
      x = instance.exports
      return (op, msg = '', a = 0, b = 0) => {
        const chars = [...msg]
        // `io` first: it may grow the memory, which detaches the old buffer.
        const at = x.io(chars.length)
        const to = new DataView(x.memory.buffer, at)
        chars.forEach((c, i) => to.setUint32(4 * i, c.codePointAt(0), true))
        const len = x.call(op, a, b)
        return text(x.out(), len)
      }
    })
}
