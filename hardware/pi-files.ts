/**
 * The Raspberry Pi system files an install step puts in place, rendered from the board data
 * so they never drift from it (a test compares them with the copies in hardware/pi/):
 *
 * - `99-citizen-radio.rules` (udev, /etc/udev/rules.d/): a stable name, /dev/citizen-radio,
 *   for a USB radio, whichever ttyUSB/ttyACM number it gets; readable by the `dialout`
 *   group; and hidden from ModemManager, whose probing of new serial ports confuses
 *   Meshtastic firmware;
 * - `citizen.service` (systemd, /etc/systemd/system/): runs `citizen start` as its own user,
 *   restarts it on failure, stops it cleanly with SIGTERM.
 */
import { BOARDS, type UsbId } from './boards.ts';

/** Where the udev rule points the radio. */
export const STABLE_RADIO_PATH = '/dev/citizen-radio';

/** The udev rules, one line per distinct USB id of the known USB boards. */
export function renderUdevRules(): string {
  const ids = new Map<string, UsbId>();
  for (const board of BOARDS) for (const u of board.usb) ids.set(`${u.vid}:${u.pid ?? '*'}`, u);
  const lines = [
    '# Citizen Cloud: a stable name for a Meshtastic radio on USB (generated from hardware/boards.ts).',
    `# The first radio plugged in gets ${STABLE_RADIO_PATH}; use --link meshtastic+serial://${STABLE_RADIO_PATH}.`,
    '# Many of these ids are generic USB-serial bridges: if other gadgets use one, add',
    '# ATTRS{serial}=="..." (see `udevadm info -a -n /dev/ttyUSB0`) to the matching line.',
    '# Install: sudo cp 99-citizen-radio.rules /etc/udev/rules.d/ && sudo udevadm control --reload && sudo udevadm trigger',
    '',
  ];
  for (const [key, u] of [...ids.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    const pid = u.pid === undefined ? '' : `, ATTRS{idProduct}=="${u.pid}"`;
    lines.push(`# ${key} ${u.note ?? ''}`.trimEnd());
    lines.push(
      `SUBSYSTEM=="tty", ATTRS{idVendor}=="${u.vid}"${pid}, SYMLINK+="${STABLE_RADIO_PATH.slice(5)}", GROUP="dialout", MODE="0660", ENV{ID_MM_DEVICE_IGNORE}="1"`,
    );
  }
  return lines.join('\n') + '\n';
}

/** What the systemd unit runs. */
export interface UnitOptions {
  /** System user the node runs as. */
  user?: string;
  /** Where the program is installed (its checkout, after `npm ci`). */
  installDir?: string;
  /** The household's data directory. */
  dataDir?: string;
  /** `--portal` address; 0.0.0.0 so phones on the home Wi-Fi can reach it. */
  portal?: string;
  /** `--link` specs. */
  links?: string[];
  /** Path of the node binary. */
  node?: string;
}

/** The systemd unit for `citizen start`. */
export function renderSystemdUnit(options: UnitOptions = {}): string {
  const user = options.user ?? 'citizen';
  const installDir = options.installDir ?? '/opt/citizen-cloud';
  const dataDir = options.dataDir ?? '/var/lib/citizen';
  const portal = options.portal ?? '0.0.0.0:8080';
  const links = options.links ?? [`meshtastic+serial://${STABLE_RADIO_PATH}`];
  const node = options.node ?? '/usr/bin/node';
  const args = [`--data ${dataDir}`, `--portal ${portal}`, ...links.map((l) => `--link ${l}`)].join(' ');
  return [
    '# Citizen Cloud household node (generated from hardware/pi-files.ts).',
    '# Install: sudo cp citizen.service /etc/systemd/system/ && sudo systemctl enable --now citizen',
    '[Unit]',
    'Description=Citizen Cloud household node',
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `User=${user}`,
    `Group=${user}`,
    'SupplementaryGroups=dialout',
    `WorkingDirectory=${installDir}`,
    `Environment=CITIZEN_DATA=${dataDir}`,
    `ExecStart=${node} ${installDir}/bin/citizen.mjs start ${args}`,
    'Restart=on-failure',
    'RestartSec=5',
    'KillSignal=SIGTERM',
    'TimeoutStopSec=30',
    'NoNewPrivileges=yes',
    'ProtectSystem=full',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    `ReadWritePaths=${dataDir}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}
