/** `citizen airtime`: time on air of one LoRa frame (SPEC §2). */
import { findPreset, loraAirtimeMs, MAX_LORA_PAYLOAD, parseCodingRate, type LoraModulation } from '../../radio/lora-airtime.ts';
import { AppError } from '../errors.ts';
import { stringOption, type Command } from './command.ts';

/** A decimal number as a person types it: digits, optionally a fraction (no hex, no exponent). */
function number(text: string | undefined, what: string, integer: boolean): number | undefined {
  if (text === undefined) return undefined;
  if (!(integer ? /^-?\d{1,9}$/ : /^-?\d{1,9}(\.\d{1,6})?$/).test(text.trim())) {
    throw new AppError('USAGE', `${what} must be ${integer ? 'a whole number' : 'a number'}, got "${text}"`, 2);
  }
  return Number(text);
}

/** A LoRa frame carries 1..255 payload bytes (an SX127x refuses a payload length of 0). */
const MIN_BYTES = 1;

export const airtimeCommand: Command = {
  name: 'airtime',
  summary:
    'Print the time on air of one LoRa frame as JSON. Give a Meshtastic preset, or the modulation itself (explicit header, CRC on, low-data-rate optimisation when the symbol time is 16 ms or more).',
  usage: 'citizen airtime (--preset NAME | --sf SF --bw HZ [--cr 4/5] [--preamble N]) --bytes N',
  help: [
    '  --preset NAME       ShortTurbo, ShortFast, ShortSlow, MediumFast, MediumSlow, LongTurbo, LongFast, LongModerate, LongSlow',
    '  --sf SF             spreading factor 6..12',
    '  --bw HZ             bandwidth in Hz, e.g. 125000',
    '  --cr 4/5            coding rate 4/5..4/8 (default 4/5)',
    '  --preamble N        preamble symbols (default 8; presets use 16)',
    '  --bytes N           payload bytes, 1..255',
  ].join('\n'),
  options: {
    preset: { type: 'string' },
    bytes: { type: 'string' },
    sf: { type: 'string' },
    bw: { type: 'string' },
    cr: { type: 'string' },
    preamble: { type: 'string' },
  },
  async run(args, io) {
    const bytes = number(stringOption(args, 'bytes'), '--bytes', true);
    if (bytes === undefined) throw new AppError('USAGE', 'missing --bytes N (see "citizen airtime --help")', 2);
    if (bytes < MIN_BYTES || bytes > MAX_LORA_PAYLOAD) throw new AppError('USAGE', `--bytes must be ${MIN_BYTES}..${MAX_LORA_PAYLOAD} (one LoRa frame), got ${bytes}`, 2);
    const presetName = stringOption(args, 'preset');
    let preset: string | null = null;
    let m: LoraModulation;
    try {
      if (presetName !== undefined) {
        if (['sf', 'bw', 'cr', 'preamble'].some((o) => args.values[o] !== undefined)) {
          throw new AppError('USAGE', 'give either --preset or --sf/--bw/--cr/--preamble, not both', 2);
        }
        const p = findPreset(presetName);
        preset = p.name;
        m = p;
      } else {
        const sf = number(stringOption(args, 'sf'), '--sf', true);
        const bw = number(stringOption(args, 'bw'), '--bw', false);
        if (sf === undefined || bw === undefined) throw new AppError('USAGE', 'give --preset NAME, or --sf and --bw', 2);
        m = { sf, bw, cr: parseCodingRate(stringOption(args, 'cr') ?? '4/5'), preamble: number(stringOption(args, 'preamble'), '--preamble', true) ?? 8 };
      }
      const ms = loraAirtimeMs(m, bytes);
      io.out(JSON.stringify({ preset, sf: m.sf, bw_hz: m.bw, cr: `4/${m.cr + 4}`, preamble: m.preamble, bytes, airtime_ms: Math.round(ms * 1000) / 1000 }));
    } catch (err) {
      if (err instanceof AppError) throw err;
      const e = err as { code?: string; message: string };
      throw new AppError(e.code ?? 'USAGE', e.message, 2, { cause: err });
    }
    return 0;
  },
};
