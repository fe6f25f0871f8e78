/**
 * `citizen radio list | probe SPEC | configure SPEC | emulate --tcp PORT` (SPEC §2): find,
 * inspect and set up Meshtastic radios, and run a software one.
 */
import { AppError } from '../errors.ts';
import type { Command } from './command.ts';

export const radioCommand: Command = {
  name: 'radio',
  summary: 'Find, probe, configure and emulate LoRa radios (Meshtastic devices).',
  usage: 'citizen radio list | probe SPEC | configure SPEC --region R [--preset P] | emulate --tcp PORT [--ether udp://127.0.0.1:PORT] [--pty]',
  help: [
    '  list                serial ports that look like LoRa radios (known USB VID/PID), as a table',
    '  probe SPEC          connect to one radio and print what it is',
    '  configure SPEC      set the radio\'s --region and --preset',
    '  emulate --tcp PORT  a software Meshtastic device on TCP',
  ].join('\n'),
  options: {},
  allowPositionals: true,
  async run(args) {
    const sub = args.positionals[0];
    throw new AppError('NOT_AVAILABLE', `"citizen radio ${sub ?? ''}" is not available in this version yet`.replace(' "', '"'), 2);
  },
};
