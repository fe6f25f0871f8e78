/**
 * The portal's page and assets: plain files under apps/portal/public (HTML, one CSS file, ES
 * modules), read once at start and served from memory by name. A request can only name a
 * file in that table, so no path ever reaches the file system (no traversal).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';

export interface Asset {
  body: Buffer;
  type: string;
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export const PUBLIC_DIR = join(import.meta.dirname, 'public');

/** Every servable file of the portal, by file name. */
export function loadPortalAssets(dir = PUBLIC_DIR): ReadonlyMap<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type && /^[a-z0-9-]+\.[a-z]+$/.test(name)) assets.set(name, { body: readFileSync(join(dir, name)), type });
  }
  return assets;
}
