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
    const config = dir.readConfig();
    const running = dir.runningNode();
    let unreachable: AppError | null = null;
    if (running) {
      try {
        const response = await fetch(`${running.portal}/api/status`, { signal: AbortSignal.timeout(10_000) });
        if (!response.ok) throw new AppError('NODE_ERROR', `the node answered ${response.status} at ${running.portal}/api/status`, 503);
        const status = (await response.json()) as { household?: unknown };
        // node.json outlives a node killed hard; its address may now be another household's node.
        if (status.household !== config.household) throw new AppError('NODE_UNREACHABLE', `${running.portal} is not this household's node`, 503);
        io.out(JSON.stringify({ ...status, running: true }, null, 2));
        return 0;
      } catch (cause) {
        unreachable =
          cause instanceof AppError ? cause : new AppError('NODE_UNREACHABLE', `the node (pid ${running.pid}) does not answer at ${running.portal}`, 503, { cause });
      }
    }
    // Stopped (or node.json is stale): read the store, which a running node would hold locked.
    let node: Awaited<ReturnType<typeof openNode>>;
    try {
      node = await openNode(dir);
    } catch (err) {
      throw unreachable && (err as AppError).code === 'STORE_LOCKED' ? unreachable : err;
    }
    try {
      io.out(JSON.stringify({ ...(await statusOf(node)), running: false }, null, 2));
    } finally {
      await node.stop();
      await node.store.close();
    }
    return 0;
  },
};
