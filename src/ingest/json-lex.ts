/**
 * JSON lexing shared by the schema-directed scanner (json.ts): scanner
 * state, whitespace (JSON's plus the wire escapes `\n` `\t` `\r`), numbers,
 * strings, and free-form values for jsonstring fields inside maps.
 */
import { ApiError, type ErrorCode } from '../errors.ts';
import { quote } from './scalars.ts';

/** Free-form JSON (jsonstring inside maps) may nest at most this deep. */
export const MAX_ANY_DEPTH = 512;

/**
 * Scanner state. Scanning is synchronous and never re-entered, so one
 * module-level cursor serves every call without allocating a parser.
 */
export const J = {
  /** The JSON text being scanned. */
  s: '',
  /** Cursor into s. */
  p: 0,
  /** Build values (decode) or only validate. */
  build: false,
  /** Message prefix naming the location, e.g. `line 3, `. */
  ctx: '',
  /** Whether the last number() token was integer syntax. */
  numInt: false,
};

/** Throws an ApiError naming the location and the field path. */
export function fail(code: ErrorCode, path: string, msg: string): never {
  throw new ApiError(code, `${J.ctx}field "${path}": ${msg}`);
}

/** The path of an array element (idx >= 0) or of the field itself. */
export function at(path: string, idx: number): string {
  return idx < 0 ? path : `${path}[${idx}]`;
}

/** The input at the current position, for messages. */
export function here(): string {
  return J.p >= J.s.length ? 'end of value' : quote(J.s.slice(J.p, J.p + 65));
}

/** The token at the current position (up to a delimiter), for messages. */
export function token(): string {
  let i = J.p;
  for (; i < J.s.length && i - J.p < 64; i++) {
    const c = J.s.charCodeAt(i);
    if (c === 44 || c === 93 || c === 125 || c === 58 || c === 32 || c === 92) break;
  }
  return i === J.p ? here() : quote(J.s.slice(J.p, i));
}

/** Sets o[k] = v, also for k = "__proto__" (which must not change the prototype). */
export function setProp(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

/** Skips JSON whitespace and the wire escapes `\n` `\t` `\r` (see json.ts). */
export function ws(): void {
  for (;;) {
    const c = J.s.charCodeAt(J.p);
    if (c === 32 || c === 10 || c === 13 || c === 9) J.p++;
    else if (c === 92) {
      const d = J.s.charCodeAt(J.p + 1);
      if (d === 110 || d === 116 || d === 114) J.p += 2;
      else return;
    } else return;
  }
}

/** Whether c is the char code of an ASCII digit. */
export function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Scans a JSON number at J.p; returns its start or -1. Sets J.numInt. */
export function number(): number {
  const start = J.p;
  let c = J.s.charCodeAt(J.p);
  if (c === 45) c = J.s.charCodeAt(++J.p);
  if (c === 48) c = J.s.charCodeAt(++J.p);
  else if (c >= 49 && c <= 57) {
    do c = J.s.charCodeAt(++J.p);
    while (isDigit(c));
  } else return -1;
  J.numInt = true;
  if (c === 46) {
    J.numInt = false;
    if (!isDigit(J.s.charCodeAt(++J.p))) return -1;
    do c = J.s.charCodeAt(++J.p);
    while (isDigit(c));
  }
  if (c === 101 || c === 69) {
    J.numInt = false;
    c = J.s.charCodeAt(++J.p);
    if (c === 43 || c === 45) c = J.s.charCodeAt(++J.p);
    if (!isDigit(c)) return -1;
    do c = J.s.charCodeAt(++J.p);
    while (isDigit(c));
  }
  return start;
}

/** Scans a JSON string at J.p (which must be '"') and returns its value. */
export function stringToken(path: string, idx: number): string {
  let i = J.p + 1;
  let from = i;
  let out = '';
  for (;;) {
    const c = J.s.charCodeAt(i);
    if (c === 34) break;
    if (c === 92) {
      out += J.s.slice(from, i);
      const d = J.s.charCodeAt(i + 1);
      i += 2;
      if (d === 34) out += '"';
      else if (d === 92) out += '\\';
      else if (d === 47) out += '/';
      else if (d === 110) out += '\n';
      else if (d === 116) out += '\t';
      else if (d === 114) out += '\r';
      else if (d === 98) out += '\b';
      else if (d === 102) out += '\f';
      else if (d === 117 && /^[0-9a-fA-F]{4}$/.test(J.s.slice(i, i + 4))) {
        out += String.fromCharCode(parseInt(J.s.slice(i, i + 4), 16));
        i += 4;
      } else {
        J.p = i - 2;
        fail('E18110', at(path, idx), `bad escape ${here()} in a JSON string`);
      }
      from = i;
      continue;
    }
    if (!(c >= 32)) {
      J.p = i;
      fail('E18110', at(path, idx), c !== c ? 'unterminated JSON string' : 'control character in a JSON string');
    }
    i++;
  }
  J.p = i + 1;
  return out + J.s.slice(from, i);
}

/** Any JSON value (jsonstring fields inside maps are free-form). */
export function anyValue(path: string, depth: number): unknown {
  const c = J.s.charCodeAt(J.p);
  if (c === 34) return stringToken(path, -1);
  if (c === 123 || c === 91) {
    if (depth >= MAX_ANY_DEPTH) fail('E18110', path, `JSON nested deeper than ${MAX_ANY_DEPTH} levels`);
    J.p++;
    ws();
    const close = c === 123 ? 125 : 93;
    const obj: Record<string, unknown> | undefined = J.build && c === 123 ? {} : undefined;
    const arr: unknown[] | undefined = J.build && c === 91 ? [] : undefined;
    if (J.s.charCodeAt(J.p) === close) {
      J.p++;
      return obj ?? arr;
    }
    for (;;) {
      if (c === 123) {
        if (J.s.charCodeAt(J.p) !== 34) fail('E18110', path, `expected a key at ${here()}`);
        const key = stringToken(path, -1);
        ws();
        if (J.s.charCodeAt(J.p) !== 58) fail('E18110', path, `expected ':' at ${here()}`);
        J.p++;
        ws();
        const v = anyValue(path, depth + 1);
        if (obj !== undefined) setProp(obj, key, v);
      } else {
        const v = anyValue(path, depth + 1);
        if (arr !== undefined) arr.push(v);
      }
      ws();
      const d = J.s.charCodeAt(J.p);
      if (d === 44) {
        J.p++;
        ws();
      } else if (d === close) {
        J.p++;
        return obj ?? arr;
      } else fail('E18110', path, `unexpected ${here()} in JSON`);
    }
  }
  if (J.s.startsWith('true', J.p)) {
    J.p += 4;
    return true;
  }
  if (J.s.startsWith('false', J.p)) {
    J.p += 5;
    return false;
  }
  if (J.s.startsWith('null', J.p)) {
    J.p += 4;
    return null;
  }
  const from = J.p;
  const start = number();
  if (start < 0) {
    J.p = from;
    fail('E18110', path, `${token()} is not valid JSON`);
  }
  const n = Number(J.s.slice(start, J.p));
  if (!Number.isFinite(n)) fail('E18110', path, `${quote(J.s.slice(start, J.p))} is out of the float64 range`);
  return n;
}
