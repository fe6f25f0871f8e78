/** `citizen vouch HOUSEHOLD`: this household knows and trusts another one. */
import { resolve } from 'node:path';
import { DataDir } from '../daemon/data-dir.ts';
import { addVouch } from '../daemon/vouches.ts';
import { AppError } from '../errors.ts';
import { dataDirOf, type Command } from './command.ts';

export const vouchCommand: Command = {
  name: 'vouch',
  summary:
    'Vouch for a household you know: its records get a larger share of the radio and of your disk, and households that trust you trust it a little too. Works whether the node is running or stopped; the vouch is signed and shared as soon as that household\'s keys are known.',
  usage: 'citizen vouch HOUSEHOLD [--data DIR]',
  help: '  HOUSEHOLD           the household\'s name, e.g. lilac',
  options: {},
  allowPositionals: true,
  async run(args, io) {
    const [household, ...rest] = args.positionals;
    if (!household || rest.length > 0) throw new AppError('USAGE', 'usage: citizen vouch HOUSEHOLD', 2);
    const dir = new DataDir(resolve(dataDirOf(args, io)));
    const config = dir.readConfig();
    if (household === config.household) throw new AppError('USAGE', `"${household}" is this household`, 2);
    const added = await addVouch(dir.path, household);
    io.out(added ? `${config.household} vouches for ${household} (signed and shared once ${household}'s keys are known)` : `${config.household} already vouches for ${household}`);
    return 0;
  },
};
