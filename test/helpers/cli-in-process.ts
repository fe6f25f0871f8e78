/**
 * Running `citizen` in the test's own process (apps/cli/main.ts with a captured Io): fast, for
 * commands that need no node of their own. Real processes: test/helpers/citizen.ts.
 */
import type { Io } from '../../apps/cli/command.ts';
import { main } from '../../apps/cli/main.ts';

export interface InProcessRun {
  code: number;
  out: string[];
  err: string[];
}

/** Run `citizen ...argv` to completion with empty stdin and no environment; never stopped. */
export async function citizenInProcess(...argv: string[]): Promise<InProcessRun> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    readStdin: async () => '',
    env: {},
    stopSignal: () => new Promise(() => undefined),
  };
  return { code: await main(argv, io), out, err };
}
