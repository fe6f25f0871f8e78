/**
 * The `citizen` command line (SPEC §2): dispatch, help, and the error rule — a clear one-line
 * message and a non-zero exit on bad input, a stack trace only with --debug.
 */
import { airtimeCommand } from './airtime.ts';
import { helpText, parse, type Command, type Io } from './command.ts';
import { initCommand } from './init.ts';
import { simCommand } from './sim.ts';
import { radioCommand } from './radio.ts';
import { startCommand } from './start.ts';
import { statusCommand } from './status.ts';
import { userCommand } from './user.ts';
import { vouchCommand } from './vouch.ts';

export const commands: Command[] = [initCommand, startCommand, userCommand, vouchCommand, statusCommand, airtimeCommand, simCommand, radioCommand];

function overview(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return (
    'Usage: citizen COMMAND [options]\n\nCitizen Cloud: a household node of the neighbourhood mesh.\n\nCommands:\n' +
    commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary.split('. ')[0]!.replace(/\.$/, '')}`).join('\n') +
    '\n\nRun "citizen COMMAND --help" for a command\'s options. Every command takes --data DIR (default: $CITIZEN_DATA, else ./data).\n'
  );
}

export function processIo(): Io {
  return {
    out: (line) => process.stdout.write(line + '\n'),
    err: (line) => process.stderr.write(line + '\n'),
    readStdin: async () => {
      if (process.stdin.isTTY) process.stderr.write('Password: ');
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
    env: process.env,
    stopSignal: () =>
      new Promise((resolve) => {
        const onSignal = (signal: string) => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          resolve(signal);
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      }),
  };
}

/** Run the CLI; returns the exit code. */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const debug = argv.includes('--debug');
  // `citizen help CMD` is `citizen CMD --help`.
  if (argv[0] === 'help' && argv.length > 1) return main([argv[1]!, '--help'], io);
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.err : io.out)(overview());
    return name === undefined ? 2 : 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    io.err(`citizen: unknown command "${name}" (see "citizen --help")`);
    return 2;
  }
  try {
    const args = parse(command, rest);
    if (args.values.help) {
      io.out(helpText(command));
      return 0;
    }
    return await command.run(args, io);
  } catch (err) {
    const e = err as { message?: string; code?: string };
    const message = (e?.message ?? String(err)).split('\n')[0];
    io.err(`citizen ${name}: ${message}`);
    if (debug) io.err((err as Error)?.stack ?? String(err));
    return typeof (err as { status?: unknown }).status === 'number' && (err as { status: number }).status === 2 ? 2 : 1;
  }
}
