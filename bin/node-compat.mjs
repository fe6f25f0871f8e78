/**
 * The one place where the Node.js runtime is prepared, loaded first by every entry point:
 * bin/citizen.mjs, mocha (.mocharc.json) and the benchmarks.
 *
 * Node 20.19+ is supported (Debian 13's nodejs). libp2p 3 and some of its dependencies call
 * Promise.withResolvers, which arrived in Node 22; on Node 20 we add the standard behaviour
 * (ES2024, identical semantics). libp2p dials WebSockets peers (`--p2p-peer …/ws/p2p/…`) with
 * the global WebSocket, which Node has from 22 on; on Node 20 it is the `ws` package's (the
 * one libp2p's WebSockets listener already uses for the sockets it accepts). Nothing else is
 * changed, and nothing on Node 22+.
 */
import { createRequire } from 'node:module';

if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers() {
      let resolve;
      let reject;
      const promise = new this((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

// Loaded on first use (~65 ms), not at every start: most commands never dial WebSockets.
if (!('WebSocket' in globalThis)) {
  const require = createRequire(import.meta.url);
  Object.defineProperty(globalThis, 'WebSocket', {
    configurable: true,
    get() {
      const { WebSocket } = require('ws');
      Object.defineProperty(globalThis, 'WebSocket', { configurable: true, writable: true, value: WebSocket });
      return WebSocket;
    },
  });
}
