/**
 * A growing byte buffer the line encoder writes request bodies into. ASCII
 * text is copied a char at a time and integers are written as digits, so a
 * record allocates no strings for its line; text with other characters goes
 * through Buffer.write (UTF-8). Measured against building a string per line
 * and against joining a list of pieces, both of which spent more time in
 * string ropes and garbage collection than in the conversion (decision 014).
 */
import { quoteString } from './line.ts';

const POW10 = Array.from({ length: 17 }, (_, i) => 10 ** i);

export class ByteWriter {
  private buf = Buffer.allocUnsafe(1 << 20);
  /** Bytes written: buf[0, len). Set back to a mark to drop a half-written record. */
  len = 0;

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + extra));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  /** Appends text as UTF-8. */
  text(s: string): void {
    const n = s.length;
    this.ensure(n * 3);
    const buf = this.buf;
    let p = this.len;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 128) {
        this.len += buf.write(s, this.len, 'utf8');
        return;
      }
      buf[p++] = c;
    }
    this.len = p;
  }

  /** Appends s[start, end), which holds no character above U+007F (the caller checked). */
  ascii(s: string, start: number, end: number): void {
    this.ensure(end - start);
    const buf = this.buf;
    let p = this.len;
    for (let i = start; i < end; i++) buf[p++] = s.charCodeAt(i);
    this.len = p;
  }

  /** Appends s[start, end) as a string field value (see quoted). */
  quotedRange(s: string, start: number, end: number): void {
    const n = end - start;
    this.ensure(n * 2 + 2);
    const buf = this.buf;
    const mark = this.len;
    let p = mark;
    buf[p++] = 34;
    for (let i = start; i < end; i++) {
      const c = s.charCodeAt(i);
      if (c >= 128) {
        this.len = mark;
        this.quoted(s.slice(start, end));
        return;
      }
      if (c === 34 || c === 92) buf[p++] = 92;
      buf[p++] = c;
    }
    buf[p++] = 34;
    this.len = p;
  }

  /** Appends one ASCII byte. */
  byte(c: number): void {
    this.ensure(1);
    this.buf[this.len++] = c;
  }

  /** Appends a string field value: double-quoted, `"` and `\` escaped. */
  quoted(s: string): void {
    const n = s.length;
    this.ensure(n * 3 + 2);
    const buf = this.buf;
    const start = this.len;
    let p = start;
    buf[p++] = 34;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 128) {
        this.len = start;
        this.ensure(n * 6 + 6);
        this.len += this.buf.write(quoteString(s), start, 'utf8');
        return;
      }
      if (c === 34 || c === 92) buf[p++] = 92; // room reserved above: at most 2n + 2 bytes
      buf[p++] = c;
    }
    buf[p++] = 34;
    this.len = p;
  }

  /** Appends a safe integer's decimal digits. */
  int(v: number): void {
    this.ensure(21);
    const buf = this.buf;
    if (v < 0) {
      buf[this.len++] = 45;
      v = -v;
    }
    let digits = 1;
    while (digits < 16 && v >= POW10[digits]!) digits++;
    let p = this.len + digits;
    this.len = p;
    // Small integer arithmetic is much cheaper than float division: use it once the value fits.
    while (v > 0x7fffffff) {
      const q = Math.floor(v / 10);
      buf[--p] = 48 + (v - q * 10);
      v = q;
    }
    let t = v | 0;
    do {
      const q = (t / 10) | 0;
      buf[--p] = 48 + (t - q * 10);
      t = q;
    } while (t > 0);
  }

  /** Appends a non-negative integer below 10^width (and 2^31) as exactly `width` digits, zero-padded. */
  padded(v: number, width: number): void {
    this.ensure(width);
    const buf = this.buf;
    let p = this.len + width;
    this.len = p;
    let t = v | 0; // callers pass values below 10^6
    for (let i = 0; i < width; i++) {
      const q = (t / 10) | 0;
      buf[--p] = 48 + (t - q * 10);
      t = q;
    }
  }

  /** A copy of the bytes written (the request body may outlive the next write) and an empty writer. */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.len);
    this.buf.copy(out, 0, 0, this.len);
    this.len = 0;
    return out;
  }
}
