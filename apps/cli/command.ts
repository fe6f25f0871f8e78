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

export function parse(command: Command, argv: string[]): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...commonOptions, ...command.options },
      allowPositionals: command.allowPositionals ?? false,
      strict: true,
    });
    return { values: values as ParsedArgs['values'], positionals };
  } catch (cause) {
    const message = (cause as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    throw new AppError('USAGE', `${message} (see "citizen ${command.name} --help")`, 2, { cause });
  }
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
  return `Usage: ${command.usage}\n\n${command.summary}\n\nOptions:\n${command.help}${command.help.endsWith('\n') ? '' : '\n'}` +
    `  --data DIR          the household's data directory (default: $CITIZEN_DATA, else ./data)\n` +
    `  --debug             print stack traces on errors\n` +
    `  -h, --help          this help\n`;
}
