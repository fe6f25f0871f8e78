/**
 * Finding serial ports that look like LoRa radios, for `citizen radio list`.
 *
 * On Linux the kernel's sysfs already says which USB device sits behind each tty
 * (/sys/class/tty/NAME/device → up to the USB device with idVendor/idProduct), so ports are
 * read from there: no `udevadm` needed (it is missing in containers, and serialport's own
 * listing spawns it and fails). Elsewhere serialport's listing is used. The root of sysfs is
 * injectable so tests run against a made-up tree.
 */
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { boardsForUsb, radioUsbVendor, type BoardProfile } from '../hardware/boards.ts';
import { BridgeError } from './errors.ts';

/** One serial port and what is known of the USB device behind it. */
export interface SerialPortInfo {
  /** Device path, e.g. /dev/ttyUSB0. */
  path: string;
  /** USB vendor and product ids, 4 lowercase hex digits. */
  vid?: string;
  pid?: string;
  manufacturer?: string;
  product?: string;
  serialNumber?: string;
}

/** A port with the guess of what radio it is. */
export interface RadioPortGuess extends SerialPortInfo {
  /** Boards with these USB ids, best match first (empty: a radio vendor's chip, board unknown). */
  boards: BoardProfile[];
  /** The USB bridge or vendor the id belongs to. */
  usbNote?: string;
}

export interface ListOptions {
  /** Root of sysfs (default /sys); Linux only. */
  sysRoot?: string;
  /** Where device nodes live (default /dev). */
  devRoot?: string;
  /** Force the platform (tests). */
  platform?: NodeJS.Platform;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/** Walks up from a tty's device directory to the USB device that has idVendor. */
async function usbDeviceOf(deviceDir: string, sysRoot: string): Promise<string | undefined> {
  let dir = deviceDir;
  for (let i = 0; i < 8 && dir.startsWith(sysRoot) && dir !== sysRoot; i++) {
    if ((await readText(join(dir, 'idVendor'))) !== undefined) return dir;
    dir = dirname(dir);
  }
  return undefined;
}

async function listLinux(sysRoot: string, devRoot: string): Promise<SerialPortInfo[]> {
  const ttyDir = join(sysRoot, 'class', 'tty');
  let names: string[];
  try {
    names = await readdir(ttyDir);
  } catch (err) {
    throw new BridgeError('SERIAL_LIST_FAILED', `cannot read ${ttyDir} (${(err as Error).message}); is this Linux with sysfs mounted?`, { cause: err });
  }
  const ports: SerialPortInfo[] = [];
  for (const name of names.sort()) {
    let device: string;
    try {
      device = await realpath(join(ttyDir, name, 'device'));
      await stat(device);
    } catch {
      continue; // virtual terminals and ptys have no device
    }
    const info: SerialPortInfo = { path: join(devRoot, name) };
    const usb = await usbDeviceOf(device, sysRoot);
    if (usb) {
      const vid = await readText(join(usb, 'idVendor'));
      const pid = await readText(join(usb, 'idProduct'));
      const manufacturer = await readText(join(usb, 'manufacturer'));
      const product = await readText(join(usb, 'product'));
      const serialNumber = await readText(join(usb, 'serial'));
      if (vid) info.vid = vid.toLowerCase();
      if (pid) info.pid = pid.toLowerCase();
      if (manufacturer) info.manufacturer = manufacturer;
      if (product) info.product = product;
      if (serialNumber) info.serialNumber = serialNumber;
    }
    ports.push(info);
  }
  return ports;
}

async function listWithSerialport(): Promise<SerialPortInfo[]> {
  try {
    const { SerialPort } = await import('serialport');
    const found = await SerialPort.list();
    return found.map((p) => {
      const info: SerialPortInfo = { path: p.path };
      if (p.vendorId) info.vid = p.vendorId.toLowerCase().padStart(4, '0');
      if (p.productId) info.pid = p.productId.toLowerCase().padStart(4, '0');
      if (p.manufacturer) info.manufacturer = p.manufacturer;
      if (p.serialNumber) info.serialNumber = p.serialNumber;
      return info;
    });
  } catch (err) {
    throw new BridgeError('SERIAL_LIST_FAILED', `cannot list serial ports: ${(err as Error).message}`, { cause: err });
  }
}

/** Every serial port with a device behind it. Throws BridgeError `SERIAL_LIST_FAILED`. */
export async function listSerialPorts(options: ListOptions = {}): Promise<SerialPortInfo[]> {
  const platform = options.platform ?? process.platform;
  if (platform === 'linux') return listLinux(options.sysRoot ?? '/sys', options.devRoot ?? '/dev');
  return listWithSerialport();
}

/** The ports whose USB ids belong to a radio board or a bridge chip radios use, with the board guessed. */
export async function listRadioPorts(options: ListOptions = {}): Promise<{ radios: RadioPortGuess[]; scanned: number }> {
  const ports = await listSerialPorts(options);
  const radios: RadioPortGuess[] = [];
  for (const port of ports) {
    if (!port.vid) continue;
    const boards = boardsForUsb(port.vid, port.pid);
    const vendor = radioUsbVendor(port.vid, port.pid);
    if (boards.length === 0 && !vendor) continue;
    const guess: RadioPortGuess = { ...port, boards };
    if (vendor?.note) guess.usbNote = vendor.note;
    radios.push(guess);
  }
  return { radios, scanned: ports.length };
}
