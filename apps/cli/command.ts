/**
 * What every `citizen` command shares: its declaration (options and help), the data directory
 * rule of SPEC §2 (--data, else $CITIZEN_DATA, else ./data) and the output streams, injected
 * so tests can run commands in-process.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { AppError } from '../errors.ts';

export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** All of standard input, as text. */
  readStdin(): Promise<string>;
  env: NodeJS.ProcessEnv;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM). */
  stopSignal(): Promise<string>;
}

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Help text after the usage line: one line per option. */
  help: string;
  options: Options;
  allowPositionals?: boolean;
  run(args: ParsedArgs, io: Io): Promise<number>;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

export const commonOptions: Options = {
  data: { type: 'string' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

/**
 * `--name -1` as `--name=-1` for a string option, so a negative number reaches the command's
 * own check (parseArgs calls a value starting with '-' ambiguous and names no rule).
 */
function joinNegativeValues(options: Options, argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let k = 0; k < argv.length; k++) {
    const arg = argv[k]!;
    const next = argv[k + 1];
    if (arg === '--') return out.concat(argv.slice(k));
    if (arg.startsWith('--') && options[arg.slice(2)]?.type === 'string' && next !== undefined && /^-[0-9.]/.test(next)) {
      out.push(`${arg}=${next}`);
      k++;
    } else out.push(arg);
  }
  return out;
}

export function parse(command: Command, argv: string[]): ParsedArgs {
  try {
    const options = { ...commonOptions, ...command.options };
    const { values, positionals } = parseArgs({
      args: joinNegativeValues(options, argv),
      options,
      allowPositionals: command.allowPositionals ?? false,
      strict: true,
    });
    return { values: values as ParsedArgs['values'], positionals };
  } catch (cause) {
    throw new AppError('USAGE', `${usageProblem(cause as Error, argv)} (see "citizen ${command.name} --help")`, 2, { cause });
  }
}

/** parseArgs' complaint in one plain line. */
function usageProblem(err: Error, argv: readonly string[]): string {
  // A value-taking option followed by another option, or by nothing: parseArgs calls the one
  // "ambiguous" and hints at '--x=-XYZ', which is beside the point for '--compare --quiet'.
  const ambiguous = /^Option '(-[^' ]+)(?:, (--[^' ]+))?' argument is ambiguous/.exec(err.message);
  if (ambiguous) {
    const name = ambiguous[2] ?? ambiguous[1]!;
    const at = argv.findIndex((a) => a === name || a === ambiguous[1]);
    const next = at >= 0 ? argv[at + 1] : undefined;
    return `${name} needs a value${next === undefined ? '' : `, and ${JSON.stringify(next)} after it is not one (write ${name}=${next} if it is)`}`;
  }
  const missing = /^Option '(-[^' ]+)(?:, (--[^' ]+))? <value>' argument missing/.exec(err.message);
  if (missing) return `${missing[2] ?? missing[1]} needs a value`;
  // One line: parseArgs spreads its hints (e.g. "use '--name=-XYZ'") over several.
  return err.message.replace(/\. To specify a positional argument.*$/s, '').replace(/\s*\n\s*/g, ' ');
}

export function dataDirOf(args: ParsedArgs, io: Io): string {
  const value = args.values.data;
  if (typeof value === 'string' && value.length > 0) return value;
  return io.env.CITIZEN_DATA || './data';
}

export function stringOption(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function listOption(args: ParsedArgs, name: string): string[] {
  const v = args.values[name];
  return Array.isArray(v) ? (v as string[]) : typeof v === 'string' ? [v] : [];
}

export function helpText(command: Command): string {
  const own = command.help === '' || command.help.endsWith('\n') ? command.help : `${command.help}\n`;
  return `Usage: ${command.usage}\n\n${command.summary}\n\nOptions:\n${own}` +
    `  --data DIR          the household's data directory (default: $CITIZEN_DATA, else ./data)\n` +
    `  --debug             print stack traces on errors\n` +
    `  -h, --help          this help\n`;
}
