/** `citizen user add NAME [--admin] --password-stdin`: create a portal account. */
import { resolve } from 'node:path';
import { createAccounts } from '../daemon/accounts.ts';
import { DataDir } from '../daemon/data-dir.ts';
import { AppError } from '../errors.ts';
import { dataDirOf, type Command } from './command.ts';

export const userCommand: Command = {
  name: 'user',
  summary:
    'Manage portal accounts for household members. "user add" creates one, reading the password from standard input; it works whether the node is running or stopped.',
  usage: 'citizen user add NAME [--admin] --password-stdin [--data DIR]',
  help: '  --admin             the account may manage other accounts\n  --password-stdin    read the password from standard input (required)',
  options: { admin: { type: 'boolean' }, 'password-stdin': { type: 'boolean' } },
  allowPositionals: true,
  async run(args, io) {
    const [action, name, ...rest] = args.positionals;
    if (action !== 'add' || !name || rest.length > 0) throw new AppError('USAGE', 'usage: citizen user add NAME [--admin] --password-stdin', 2);
    if (!args.values['password-stdin']) {
      throw new AppError('USAGE', 'give the password on standard input with --password-stdin (it never goes on the command line)', 2);
    }
    const dir = new DataDir(resolve(dataDirOf(args, io)));
    const config = dir.readConfig();
    const password = (await io.readStdin()).replace(/\r?\n$/, '');
    const accounts = createAccounts(dir.accountsPath);
    await accounts.add(name, password, { admin: args.values.admin === true });
    dir.memberIdentity(name);
    io.out(`Added ${name}@${config.household}${args.values.admin ? ' (admin)' : ''}`);
    return 0;
  },
};
