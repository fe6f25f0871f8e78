/**
 * Links for `citizen start --link SPEC`: the one place that turns link specs (SPEC §2) into
 * `Link`s, each behind the duty-cycle governor its region demands.
 *
 *   udp://...                       radio/udp-link.ts; with `&preset=` a LoRa radio's frames,
 *                                   airtime and (with `&region=`, default EU868) duty cycle
 *   meshtastic+serial|tcp://...     firmware-bridge/ (a Meshtastic radio as a modem)
 */
import { createDutyCycleGovernor, monotonicClock, type DutyCycleGovernor } from '../../radio/duty-cycle.ts';
import type { Clock, Link } from '../../radio/link.ts';
import { createLink, parseLinkSpec } from '../../radio/link-spec.ts';
import { findRegion, limitsAt } from '../../radio/region-plan.ts';
import { RadioError } from '../../radio/errors.ts';
import { AppError } from '../errors.ts';

/** Region assumed for an emulated LoRa link that names none: Meshtastic's EU default. */
export const DEFAULT_EMULATED_REGION = 'EU868';

export interface OpenedLink {
  link: Link;
  /** The governor gating its sends, for links with a regulated airtime budget. */
  governor: DutyCycleGovernor | null;
  region: string | null;
}

export interface LinkFactoryDeps {
  clock: Clock;
  /** What duty-cycle governors count time by: real elapsed time (default monotonicClock), or a test's clock. */
  airtimeClock?: Clock;
  /** Builds Meshtastic links (firmware-bridge/); absent where that layer is not wired. */
  meshtastic?: (spec: ReturnType<typeof parseLinkSpec>) => Link;
}

/**
 * Build the links a node was started with (down until started). Throws AppError USAGE with
 * the link's own message for a malformed spec or unknown region.
 */
export function openLinks(specs: readonly string[], deps: LinkFactoryDeps): OpenedLink[] {
  // Two links bound to one UDP address: the second could never come up.
  const bound = new Map<string, string>();
  for (const spec of specs) {
    let parsed: ReturnType<typeof parseLinkSpec>;
    try {
      parsed = parseLinkSpec(spec);
    } catch (err) {
      if (err instanceof RadioError) throw new AppError('USAGE', `--link ${spec}: ${err.message}`, 2, { cause: err });
      throw err;
    }
    if (parsed.kind !== 'udp' || parsed.bind.port === 0) continue;
    const key = `${parsed.bind.host}:${parsed.bind.port}`;
    const other = bound.get(key);
    if (other !== undefined) throw new AppError('USAGE', `--link ${spec} binds ${key}, as --link ${other} does; give each link its own port`, 2);
    bound.set(key, spec);
  }
  return specs.map((spec) => {
    try {
      return openLink(spec, deps);
    } catch (err) {
      if (err instanceof RadioError) throw new AppError('USAGE', `--link ${spec}: ${err.message}`, 2, { cause: err });
      throw err;
    }
  });
}

function openLink(text: string, deps: LinkFactoryDeps): OpenedLink {
  const spec = parseLinkSpec(text);
  if (spec.kind !== 'udp') {
    if (!deps.meshtastic) throw new AppError('NOT_AVAILABLE', `${spec.kind} links are not available in this build`, 2);
    const link = deps.meshtastic(spec) as Link & { radioInfo?: () => { region: string } | undefined };
    // The radio names its region at each handshake; its governor lives in the link itself.
    return {
      link,
      governor: null,
      get region() {
        return link.radioInfo?.()?.region ?? null;
      },
    };
  }
  if (spec.preset === undefined) return { link: createLink(spec, { clock: deps.clock }), governor: null, region: null };
  const region = findRegion(spec.region ?? DEFAULT_EMULATED_REGION);
  const { dutyCycle } = limitsAt(region);
  const governor = createDutyCycleGovernor({ dutyCycle }, { clock: deps.airtimeClock ?? monotonicClock });
  const link = createLink(spec, { clock: deps.clock, beforeSend: (airtimeMs) => governor.acquire(airtimeMs) });
  return { link, governor, region: region.name };
}
