/**
 * Running the real `citizen` program from tests: one-shot commands, long-running nodes
 * (started and stopped as real processes), and logged-in HTTP sessions against a node.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';

export const BIN = join(import.meta.dirname, '../../bin/citizen.mjs');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run one `citizen` command to completion, with `input` on stdin. */
export function citizen(args: string[], input?: string, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

export interface RunningNode {
  child: ChildProcessWithoutNullStreams;
  output: () => string;
}

/** Start `citizen start ARGS` and wait (bounded: 30 s) until it prints its portal address. */
export async function startNode(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunningNode> {
  const env = { ...process.env, ...options.env };
  delete env.CITIZEN_DATA;
  const child = spawn(process.execPath, [BIN, 'start', ...args], { cwd: options.cwd, env });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start in 30 s:\n${output}`)), 30_000);
    const check = () => {
      if (/Portal: http/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', check);
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`node exited with ${code}:\n${output}`));
    });
  });
  child.removeAllListeners('close');
  return { child, output: () => output };
}

/** SIGTERM a node and wait for it to exit; resolves to its exit code. */
export function stopNode(node: RunningNode): Promise<number | null> {
  return new Promise((resolve) => {
    if (node.child.exitCode !== null) return resolve(node.child.exitCode);
    node.child.on('close', (code) => resolve(code));
    node.child.kill('SIGTERM');
  });
}

/** Log in to a node's API; returns a fetch bound to that session. */
export async function login(base: string, user: string, password: string): Promise<(path: string, init?: RequestInit) => Promise<Response>> {
  const res = await fetch(`${base}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, password }),
  });
  if (res.status !== 200) throw new Error(`login ${user} at ${base}: ${res.status} ${await res.text()}`);
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
  return (path, init = {}) => fetch(`${base}${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), cookie } });
}

/** Poll `probe` every `everyMs` until it returns a value other than undefined, or fail after `timeoutMs`. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
