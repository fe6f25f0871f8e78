#!/usr/bin/env node
// The `citizen` command. The sources are TypeScript, run through tsx's loader, so a clean
// clone needs no build step: `npm install`, then `npx citizen ...` or `npm start`.
import './node-compat.mjs';
import { register } from 'tsx/esm/api';

register();
const { guardProcess, main } = await import('../apps/cli/main.ts');
guardProcess(process.argv.slice(2));
process.exitCode = await main(process.argv.slice(2));
// The command is done: a handle something forgot to close must not keep the process alive.
setTimeout(() => process.exit(), 3000).unref();
