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
        // Started by npm, the node's parent is npm (`npm start` execs the node) or a shell that
        // npm forwards SIGTERM to (`npx citizen start`, older scripts): when that parent dies the
        // node would run on, orphaned, holding the port and the store. So under npm the end of
        // its parent stops the node too.
        const launcher = process.env.npm_lifecycle_event !== undefined ? process.ppid : null;
        const watch =
          launcher !== null && launcher > 1 ? setInterval(() => !isAlive(launcher) && onSignal('the npm process that started the node ended'), 500) : null;
        watch?.unref();
        // The handlers stay for good: a signal after the first must not find none and kill the
        // node half-way through stopping. Ctrl-C on `npm start` signals both npm and the node,
        // and npm passes the signal on to the node again; a script may signal the node and its
        // process group alike. The node is stopping already, so a repeat changes nothing.
        let stopping = false;
        function onSignal(signal: string) {
          if (stopping) return;
          stopping = true;
          if (watch) clearInterval(watch);
          resolve(signal);
        }
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      }),
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Process-wide rules of the CLI: output to a closed pipe (`citizen status | head -1`) is not an
 * error, and a failure nothing caught is still one line on stderr and exit 1, with the stack
 * only under --debug.
 */
export function guardProcess(argv: readonly string[]): void {
  const debug = argv.includes('--debug');
  const name = argv.find((a) => /^[a-z]+$/.test(a) && commands.some((c) => c.name === a));
  const fatal = (err: unknown) => {
    const message = ((err as Error)?.message ?? String(err)).split('\n')[0];
    try {
      process.stderr.write(`citizen${name ? ` ${name}` : ''}: ${message}\n${debug ? `${(err as Error)?.stack ?? ''}\n` : ''}`);
    } finally {
      process.exit(1);
    }
  };
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return;
      fatal(err);
    });
  }
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
}

/**
 * `citizen --data DIR CMD ...` is `citizen CMD --data DIR ...`: the options every command takes
 * may also come before the command's name.
 */
function commonOptionsFirst(argv: string[]): string[] {
  const lead: string[] = [];
  let k = 0;
  for (;;) {
    const arg = argv[k];
    if (arg === '--debug' || arg?.startsWith('--data=')) {
      lead.push(arg);
      k += 1;
    } else if (arg === '--data' && k + 1 < argv.length) {
      lead.push(arg, argv[k + 1]!);
      k += 2;
    } else break;
  }
  if (k === 0) return argv;
  const name = argv[k];
  return name === undefined || name === 'help' || name.startsWith('-') ? argv.slice(k) : [name, ...lead, ...argv.slice(k + 1)];
}

/** Run the CLI; returns the exit code. */
export async function main(argvGiven: string[], io: Io = processIo()): Promise<number> {
  const argv = commonOptionsFirst(argvGiven);
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
