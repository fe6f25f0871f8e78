/**
 * Commands of SPEC §2 whose layers are not built yet (simulator, radios). They have their
 * help text already and say plainly that they are not available, with a non-zero exit.
 */
import { AppError } from '../errors.ts';
import type { Command } from './command.ts';

function notYet(name: string, summary: string, usage: string, help: string): Command {
  return {
    name,
    summary,
    usage,
    help,
    options: {},
    allowPositionals: true,
    async run() {
      throw new AppError('NOT_AVAILABLE', `"citizen ${name}" is not available in this version yet`, 2);
    },
  };
}

export const simCommand = notYet(
  'sim',
  'Run the network simulator on a scenario file; writes DIR/metrics.json and pictures.',
  'citizen sim SCENARIO.json [--out DIR] [--seed N] [--strategy citizen|flood] [--compare flood] [--quiet]',
  '  --out DIR           where metrics.json and the pictures go\n  --seed N            override the scenario seed\n  --strategy NAME     citizen (default) or flood\n  --compare flood     also run the baseline on the same world\n  --quiet             no progress bar',
);

export const radioCommand = notYet(
  'radio',
  'Find, probe and emulate LoRa radios.',
  'citizen radio list | probe SPEC | emulate --tcp PORT [--ether udp://127.0.0.1:PORT]',
  '  list                serial ports that look like LoRa radios\n  probe SPEC          connect to one radio and print what it is\n  emulate --tcp PORT  a software Meshtastic device on TCP',
);
