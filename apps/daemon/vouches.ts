/**
 * The households this household vouches for, as the person running it chose them with
 * `citizen vouch NAME`: a small list in `DIR/vouches.json`, written by the CLI whether the node
 * runs or not, and carried out by the node (a signed Vouch entry in the directory, see
 * mesh/directory.ts) as soon as the named household's keys are known. Vouches decide how
 * much airtime and storage a household's records get here and, through trust-of-trust, at
 * the households that vouch for us (mesh/node.ts `trustOf`).
 *
 *   DIR/vouches.json   {"version": 1, "households": ["lilac", "oak"]}
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isValidName } from '../../mesh/directory.ts';
import type { MeshNode } from '../../mesh/node.ts';
import { MeshError } from '../../mesh/errors.ts';
import { AppError } from '../errors.ts';
import { withFileLock, writeFileAtomically } from './atomic-file.ts';

interface VouchesFile {
  version: 1;
  households: string[];
}

export function vouchesPath(dataDir: string): string {
  return join(dataDir, 'vouches.json');
}

/** The names in the file (none when there is no file). Throws AppError VOUCHES_CORRUPT. */
export function readVouches(dataDir: string): string[] {
  const path = vouchesPath(dataDir);
  if (!existsSync(path)) return [];
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as VouchesFile;
    if (parsed.version !== 1 || !Array.isArray(parsed.households) || !parsed.households.every((h) => typeof h === 'string' && isValidName(h))) {
      throw new Error('unexpected shape');
    }
    return parsed.households;
  } catch (cause) {
    throw new AppError('VOUCHES_CORRUPT', `${path} is not a vouches file; remove it and vouch again`, 500, { cause });
  }
}

/** Add a household name to the list; false when it was there already. */
export async function addVouch(dataDir: string, household: string): Promise<boolean> {
  if (!isValidName(household)) throw new AppError('USAGE', `"${household}" is not a household name (1-32 lowercase letters, digits and '-')`, 2);
  const path = vouchesPath(dataDir);
  return withFileLock(path, async () => {
    const households = readVouches(dataDir);
    if (households.includes(household)) return false;
    const file: VouchesFile = { version: 1, households: [...households, household].sort() };
    await writeFileAtomically(path, `${JSON.stringify(file, null, 2)}\n`, 0o644);
    return true;
  });
}

/**
 * Publish the vouches the node can make now (the household is known, and only one household
 * has that name). Returns the names still waiting. Never throws for a single name.
 */
export async function applyVouches(dataDir: string, node: MeshNode, log: (line: string) => void): Promise<string[]> {
  const waiting: string[] = [];
  for (const name of readVouches(dataDir)) {
    if (name === node.householdName) continue;
    try {
      await node.vouch(name);
    } catch (err) {
      if (err instanceof MeshError && err.code === 'HOUSEHOLD_UNKNOWN') waiting.push(name);
      else if (err instanceof MeshError && err.code === 'HOUSEHOLD_AMBIGUOUS') log(`cannot vouch for "${name}": ${err.message}`);
      else throw err;
    }
  }
  return waiting;
}
