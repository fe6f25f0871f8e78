/** `citizen init --name HOUSEHOLD`: create the household identity and config. */
import { resolve } from 'node:path';
import { DataDir } from '../daemon/data-dir.ts';
import { AppError } from '../errors.ts';
import { dataDirOf, stringOption, type Command } from './command.ts';

export const initCommand: Command = {
  name: 'init',
  summary: 'Create the household identity and config in the data directory. Refuses to overwrite an existing one.',
  usage: 'citizen init --name HOUSEHOLD [--data DIR]',
  help: "  --name HOUSEHOLD    the household's name: 1-32 lowercase letters, digits and '-'",
  options: { name: { type: 'string' } },
  async run(args, io) {
    const name = stringOption(args, 'name');
    if (!name) throw new AppError('USAGE', 'missing --name HOUSEHOLD (see "citizen init --help")', 2);
    const dir = new DataDir(resolve(dataDirOf(args, io)));
    const { identity } = dir.init(name);
    io.out(`Created household "${name}" in ${dir.path}`);
    io.out(`Household key fingerprint: ${identity.fingerprint}`);
    return 0;
  },
};
