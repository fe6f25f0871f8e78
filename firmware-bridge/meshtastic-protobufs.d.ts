/**
 * Types for `@meshtastic/protobufs` 2.7.18: its package.json names `dist/mod.d.ts`, but the
 * build shipped the declarations under a hashed name. This points TypeScript at them; the
 * version is pinned exactly in package.json so the name cannot drift. Remove when fixed upstream.
 */
declare module '@meshtastic/protobufs' {
  export * from '@meshtastic/protobufs/dist/mod-D6ytgKaP.js';
}
