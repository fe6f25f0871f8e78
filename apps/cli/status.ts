/** `citizen status`: one JSON object about the node, from its API or from the store. */
import { resolve } from 'node:path';
import { openNode, statusOf } from '../daemon/daemon.ts';
import { DataDir } from '../daemon/data-dir.ts';
import { AppError } from '../errors.ts';
import { dataDirOf, type Command } from './command.ts';

export const statusCommand: Command = {
  name: 'status',
  summary:
    'Print one JSON object: identity, links, neighbours, store counts, airtime use. Asks the running node; when the node is stopped, reads the store.',
  usage: 'citizen status [--data DIR]',
  help: '',
  options: {},
  async run(args, io) {
    const dir = new DataDir(resolve(dataDirOf(args, io)));
    dir.readConfig();
    const running = dir.runningNode();
    if (running) {
      let response: Response;
      try {
        response = await fetch(`${running.portal}/api/status`, { signal: AbortSignal.timeout(10_000) });
      } catch (cause) {
        throw new AppError('NODE_UNREACHABLE', `the node (pid ${running.pid}) does not answer at ${running.portal}`, 503, { cause });
      }
      if (!response.ok) throw new AppError('NODE_ERROR', `the node answered ${response.status} at ${running.portal}/api/status`, 503);
      io.out(JSON.stringify({ ...((await response.json()) as object), running: true }, null, 2));
      return 0;
    }
    const node = await openNode(dir);
    try {
      io.out(JSON.stringify({ ...(await statusOf(node)), running: false }, null, 2));
    } finally {
      await node.stop();
      await node.store.close();
    }
    return 0;
  },
};
