import { randomBytes } from 'node:crypto';

/**
 * Marks a bigint inside JSON.stringify's output. It carries a random nonce
 * of this process: a record's own string starting with a fixed marker
 * (`"\u0000big5"`) was taken for a long and written as the number 5.
 */
const MARK = `\u0000big${randomBytes(8).toString('hex')}:`;
const MARKED = new RegExp(`"${JSON.stringify(MARK).slice(1, -1).replaceAll('\\', '\\\\')}(-?\\d+)"`, 'g');

/**
 * One JSON object per point, on one line. Longs beyond ±(2^53-1) decode as
 * bigint and are written as exact JSON numbers (JSON.stringify cannot, and
 * Node 20 lacks JSON.rawJSON), so they go through a marker string.
 */
export function jsonLine(point: Record<string, unknown>): string {
  let big = false;
  const text = JSON.stringify(point, (_k, v: unknown) => {
    if (typeof v !== 'bigint') return v;
    big = true;
    return `${MARK}${v.toString()}`;
  });
  return big ? text.replace(MARKED, '$1') : text;
}
