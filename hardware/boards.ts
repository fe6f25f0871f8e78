/**
 * Board profiles as data: the Meshtastic radios a household is likely to plug into its Pi
 * (USB serial), reach over Wi-Fi (TCP 4403), or stack on it as an SPI HAT run by
 * `meshtasticd`. `citizen radio list` uses the USB ids to guess the board behind a serial
 * port, and the README's "Attaching a radio" section follows the families named here.
 *
 * USB ids are those of the board's USB interface: often a generic USB-serial bridge
 * (Silicon Labs CP210x, WCH CH9102/CH340) that other gadgets use too, so a match is a guess,
 * not proof; `citizen radio probe` asks the radio itself. Ids were read from the Meshtastic
 * Python client's device table (meshtastic/supported_device.py) and the chip vendors' ids;
 * `note` marks where a board shows another id in its bootloader.
 *
 * Facts only, no behaviour but lookups.
 */

/** A USB vendor id and, when specific, product id (4 lowercase hex digits each). */
export interface UsbId {
  readonly vid: string;
  /** Absent: any product of this vendor. */
  readonly pid?: string;
  /** What the id belongs to (bridge chip, bootloader). */
  readonly note?: string;
}

/** How a board reaches the Pi. */
export type Attachment = 'usb-serial' | 'wifi-tcp' | 'ethernet-tcp' | 'spi-hat';

export interface BoardProfile {
  /** Stable id, kebab-case. */
  readonly id: string;
  readonly name: string;
  readonly family: 'Heltec' | 'LilyGO' | 'RAK Wireless' | 'Seeed' | 'Raspberry Pi HAT';
  /** Microcontroller (none for a HAT: the Pi runs the firmware as meshtasticd). */
  readonly mcu: string;
  /** LoRa transceiver. */
  readonly radio: string;
  readonly usb: readonly UsbId[];
  readonly attach: readonly Attachment[];
  /** Linux serial device name the board usually gets. */
  readonly linuxSerial?: 'ttyUSB' | 'ttyACM';
  /** Meshtastic's HardwareModel name, as `citizen radio probe` reports it. */
  readonly hwModel: string;
  /** Highest transmit power of the radio module, dBm (the region's legal limit may be lower). */
  readonly maxTxPowerDbm: number;
  readonly antenna: string;
  readonly notes: string;
}

const CP210X: UsbId = { vid: '10c4', pid: 'ea60', note: 'Silicon Labs CP210x USB-serial bridge' };
const CH9102: UsbId = { vid: '1a86', pid: '55d4', note: 'WCH CH9102 USB-serial bridge' };
const CH340: UsbId = { vid: '1a86', pid: '7523', note: 'WCH CH340 USB-serial bridge' };
const ESP32S3_USB: UsbId = { vid: '303a', pid: '1001', note: 'Espressif ESP32-S3 built-in USB serial/JTAG' };
const ADAFRUIT_NRF52_APP: UsbId = { vid: '239a', pid: '8029', note: 'Adafruit nRF52 bootloader family, application' };
const ADAFRUIT_NRF52_BOOT: UsbId = { vid: '239a', pid: '0029', note: 'Adafruit nRF52 bootloader family, boot mode' };
const SEEED_ANY: UsbId = { vid: '2886', note: 'Seeed Studio' };
const RP2040: UsbId = { vid: '2e8a', note: 'Raspberry Pi RP2040 USB' };

const NEVER_WITHOUT_ANTENNA = 'Never power it on without its antenna screwed on: transmitting into nothing can destroy the radio.';

/** The boards this project knows. */
export const BOARDS: readonly BoardProfile[] = [
  {
    id: 'heltec-v3',
    name: 'Heltec WiFi LoRa 32 V3',
    family: 'Heltec',
    mcu: 'ESP32-S3',
    radio: 'SX1262',
    usb: [CP210X],
    attach: ['usb-serial', 'wifi-tcp'],
    linuxSerial: 'ttyUSB',
    hwModel: 'HELTEC_V3',
    maxTxPowerDbm: 22,
    antenna: 'U.FL/IPEX socket; ships with a small spring or flexible antenna, an external 868/915 MHz antenna on a pigtail reaches much further',
    notes: `Cheap and common; USB-C. ${NEVER_WITHOUT_ANTENNA}`,
  },
  {
    id: 'heltec-v2',
    name: 'Heltec WiFi LoRa 32 V2 / V2.1',
    family: 'Heltec',
    mcu: 'ESP32',
    radio: 'SX1276',
    usb: [CP210X],
    attach: ['usb-serial', 'wifi-tcp'],
    linuxSerial: 'ttyUSB',
    hwModel: 'HELTEC_V2_1',
    maxTxPowerDbm: 20,
    antenna: 'U.FL/IPEX socket',
    notes: `Older board (micro-USB); works, but the V3 receives better. ${NEVER_WITHOUT_ANTENNA}`,
  },
  {
    id: 'heltec-wireless-tracker',
    name: 'Heltec Wireless Tracker',
    family: 'Heltec',
    mcu: 'ESP32-S3',
    radio: 'SX1262',
    usb: [ESP32S3_USB],
    attach: ['usb-serial', 'wifi-tcp'],
    linuxSerial: 'ttyACM',
    hwModel: 'HELTEC_WIRELESS_TRACKER',
    maxTxPowerDbm: 22,
    antenna: 'U.FL/IPEX socket; GPS antenna on board',
    notes: 'Has GPS, which a fixed household node does not need; switch GPS off to save power.',
  },
  {
    id: 'lilygo-t-beam',
    name: 'LilyGO T-Beam (v1.1 / v1.2)',
    family: 'LilyGO',
    mcu: 'ESP32',
    radio: 'SX1262 or SX1276',
    usb: [CH9102, CP210X],
    attach: ['usb-serial', 'wifi-tcp'],
    linuxSerial: 'ttyACM',
    hwModel: 'TBEAM',
    maxTxPowerDbm: 22,
    antenna: 'SMA socket (868/915 MHz antenna included)',
    notes: `18650 battery holder: a natural UPS for a node on a windowsill. ${NEVER_WITHOUT_ANTENNA}`,
  },
  {
    id: 'lilygo-t-beam-supreme',
    name: 'LilyGO T-Beam Supreme (S3)',
    family: 'LilyGO',
    mcu: 'ESP32-S3',
    radio: 'SX1262',
    usb: [ESP32S3_USB],
    attach: ['usb-serial', 'wifi-tcp'],
    linuxSerial: 'ttyACM',
    hwModel: 'LILYGO_TBEAM_S3_CORE',
    maxTxPowerDbm: 22,
    antenna: 'SMA socket',
    notes: NEVER_WITHOUT_ANTENNA,
  },
  {
    id: 'lilygo-t-lora',
    name: 'LilyGO T-LoRa V2.1-1.6 / T3-S3',
    family: 'LilyGO',
    mcu: 'ESP32 / ESP32-S3',
    radio: 'SX1276 or SX1262',
    usb: [CH9102, CP210X, ESP32S3_USB],
    attach: ['usb-serial', 'wifi-tcp'],
    linuxSerial: 'ttyACM',
    hwModel: 'TLORA_V2_1_1P6',
    maxTxPowerDbm: 20,
    antenna: 'SMA or U.FL socket, depending on the revision',
    notes: NEVER_WITHOUT_ANTENNA,
  },
  {
    id: 'lilygo-t-echo',
    name: 'LilyGO T-Echo',
    family: 'LilyGO',
    mcu: 'nRF52840',
    radio: 'SX1262',
    usb: [ADAFRUIT_NRF52_APP, ADAFRUIT_NRF52_BOOT],
    attach: ['usb-serial'],
    linuxSerial: 'ttyACM',
    hwModel: 'T_ECHO',
    maxTxPowerDbm: 22,
    antenna: 'SMA socket',
    notes: 'Very low power (nRF52), e-paper screen; no Wi-Fi, so USB serial only.',
  },
  {
    id: 'rak-wisblock-4631',
    name: 'RAK WisBlock (RAK19003/19007 base + RAK4631 core)',
    family: 'RAK Wireless',
    mcu: 'nRF52840',
    radio: 'SX1262',
    usb: [ADAFRUIT_NRF52_APP, ADAFRUIT_NRF52_BOOT],
    attach: ['usb-serial', 'ethernet-tcp'],
    linuxSerial: 'ttyACM',
    hwModel: 'RAK4631',
    maxTxPowerDbm: 22,
    antenna: 'U.FL/IPEX socket for LoRa (and a separate one for BLE)',
    notes: 'Low power, modular; with the RAK13800 Ethernet module it can be reached over TCP 4403 instead of USB.',
  },
  {
    id: 'rak-11200',
    name: 'RAK WisBlock with RAK11200 (ESP32) core',
    family: 'RAK Wireless',
    mcu: 'ESP32',
    radio: 'SX1262 (RAK13300 module)',
    usb: [CH340],
    attach: ['usb-serial', 'wifi-tcp'],
    linuxSerial: 'ttyUSB',
    hwModel: 'RAK11200',
    maxTxPowerDbm: 22,
    antenna: 'U.FL/IPEX socket',
    notes: 'The LoRa radio is a separate WisBlock module (RAK13300).',
  },
  {
    id: 'rak-11310',
    name: 'RAK WisBlock with RAK11310 (RP2040) core',
    family: 'RAK Wireless',
    mcu: 'RP2040',
    radio: 'SX1262',
    usb: [RP2040],
    attach: ['usb-serial'],
    linuxSerial: 'ttyACM',
    hwModel: 'RAK11310',
    maxTxPowerDbm: 22,
    antenna: 'U.FL/IPEX socket',
    notes: 'No Wi-Fi: USB serial only.',
  },
  {
    id: 'seeed-t1000-e',
    name: 'Seeed SenseCAP Card Tracker T1000-E',
    family: 'Seeed',
    mcu: 'nRF52840',
    radio: 'LR1110',
    usb: [SEEED_ANY],
    attach: ['usb-serial'],
    linuxSerial: 'ttyACM',
    hwModel: 'TRACKER_T1000_E',
    maxTxPowerDbm: 22,
    antenna: 'internal (cannot be changed)',
    notes: 'Card-sized and sealed; the internal antenna limits range, better as a member’s pocket radio than as the household node. Charges and talks over its magnetic USB cable.',
  },
  {
    id: 'seeed-xiao-s3-wio',
    name: 'Seeed XIAO ESP32S3 + Wio-SX1262 kit',
    family: 'Seeed',
    mcu: 'ESP32-S3',
    radio: 'SX1262',
    usb: [ESP32S3_USB],
    attach: ['usb-serial', 'wifi-tcp'],
    linuxSerial: 'ttyACM',
    hwModel: 'SEEED_XIAO_S3',
    maxTxPowerDbm: 22,
    antenna: 'U.FL/IPEX socket',
    notes: NEVER_WITHOUT_ANTENNA,
  },
  {
    id: 'seeed-wio-tracker-l1',
    name: 'Seeed Wio Tracker L1',
    family: 'Seeed',
    mcu: 'nRF52840',
    radio: 'SX1262',
    usb: [SEEED_ANY],
    attach: ['usb-serial'],
    linuxSerial: 'ttyACM',
    hwModel: 'SEEED_WIO_TRACKER_L1',
    maxTxPowerDbm: 22,
    antenna: 'U.FL/IPEX socket',
    notes: 'No Wi-Fi: USB serial only.',
  },
  {
    id: 'waveshare-sx1262-hat',
    name: 'Waveshare SX1262 LoRa HAT (868M/915M)',
    family: 'Raspberry Pi HAT',
    mcu: 'none (meshtasticd on the Pi)',
    radio: 'SX1262',
    usb: [],
    attach: ['spi-hat'],
    hwModel: 'PORTDUINO',
    maxTxPowerDbm: 22,
    antenna: 'SMA socket',
    notes: 'Needs SPI enabled (raspi-config) and meshtasticd configured for this HAT; meshtasticd then serves the client API on TCP 4403 of the Pi itself. Use the SX1262 version; the UART-only variants are not supported.',
  },
  {
    id: 'meshadv-pi-hat',
    name: 'MeshAdv Pi HAT (Ebyte E22-900M30S)',
    family: 'Raspberry Pi HAT',
    mcu: 'none (meshtasticd on the Pi)',
    radio: 'SX1262 (E22 module with power amplifier)',
    usb: [],
    attach: ['spi-hat'],
    hwModel: 'PORTDUINO',
    maxTxPowerDbm: 30,
    antenna: 'U.FL/IPEX or SMA, depending on the revision',
    notes: 'Up to 1 W: set the transmit power no higher than your region allows (EU868: 27 dBm ERP on 869.4–869.65 MHz, 14 dBm elsewhere). meshtasticd serves TCP 4403.',
  },
  {
    id: 'rak-pi-hat',
    name: 'RAK6421 WisBlock Pi HAT with RAK13300 (SX1262)',
    family: 'Raspberry Pi HAT',
    mcu: 'none (meshtasticd on the Pi)',
    radio: 'SX1262',
    usb: [],
    attach: ['spi-hat'],
    hwModel: 'PORTDUINO',
    maxTxPowerDbm: 22,
    antenna: 'U.FL/IPEX socket on the RAK13300',
    notes: 'meshtasticd has a ready configuration for it; it serves TCP 4403.',
  },
];

/** USB vendors whose serial ports are worth looking at even when no board matches exactly. */
export const RADIO_USB_VENDORS: readonly UsbId[] = [
  CP210X,
  { vid: '1a86', note: 'WCH CH34x/CH91xx USB-serial bridge' },
  { vid: '303a', note: 'Espressif (ESP32-S2/S3/C3/C6 built-in USB)' },
  { vid: '239a', note: 'Adafruit nRF52 family (RAK4631, T-Echo)' },
  SEEED_ANY,
  RP2040,
  { vid: '1915', note: 'Nordic Semiconductor' },
  { vid: '0403', note: 'FTDI USB-serial bridge' },
];

function hex4(id: string | number): string {
  const text = typeof id === 'number' ? id.toString(16) : id.replace(/^0x/i, '');
  return text.toLowerCase().padStart(4, '0');
}

/** Boards whose USB ids match, exact product matches first. */
export function boardsForUsb(vid: string | number, pid?: string | number): BoardProfile[] {
  const v = hex4(vid);
  const p = pid === undefined ? undefined : hex4(pid);
  const exact = BOARDS.filter((b) => b.usb.some((u) => u.vid === v && u.pid !== undefined && u.pid === p));
  const vendor = BOARDS.filter((b) => !exact.includes(b) && b.usb.some((u) => u.vid === v && u.pid === undefined));
  return [...exact, ...vendor];
}

/** What a USB id is (a bridge chip or radio vendor), if it is one radios use. */
export function radioUsbVendor(vid: string | number, pid?: string | number): UsbId | undefined {
  const v = hex4(vid);
  const p = pid === undefined ? undefined : hex4(pid);
  return RADIO_USB_VENDORS.find((u) => u.vid === v && (u.pid === undefined || u.pid === p));
}

/** A board by id. */
export function findBoard(id: string): BoardProfile | undefined {
  return BOARDS.find((b) => b.id === id);
}
