/**
 * File names from strangers made safe: a name is only ever a label (files are stored by id,
 * never by name), but it is shown in pages and sent back in Content-Disposition, so it loses
 * any directory part, control and reserved characters, leading dots and excess length.
 */

const MAX_NAME_BYTES = 200;

/** A safe display and download name for what a client called its file. */
export function sanitizeFileName(raw: string): string {
  let name = raw.normalize('NFC');
  name = name.split(/[\\/]/).pop() ?? '';
  name = name.replace(/[\u0000-\u001f\u007f-\u009f<>:"|?*\u202a-\u202e\u2066-\u2069]/g, '_');
  name = name.replace(/^[.\s]+/, '').replace(/[.\s]+$/, '');
  while (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) name = [...name].slice(0, -1).join('');
  return name === '' ? 'file' : name;
}

/** A Content-Disposition value for a download: an ASCII fallback and the UTF-8 name (RFC 6266). */
export function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\%]/g, '_');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
