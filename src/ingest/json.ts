/**
 * Schema-directed JSON scanner for array and map values. One recursive
 * descent both validates (build = false: no objects are created) and decodes
 * (build = true). It exists instead of JSON.parse because:
 *  - long fields need their exact digits (int64 range check, bigint beyond
 *    2^53) and `1.0` must not pass as a long, which JSON.parse hides;
 *  - errors must name the nested field (`profile.salary`, `addresses[2]`);
 *  - clients that escape whitespace the wire way (`\n`, `\t`, `\r` outside
 *    JSON strings) are accepted: there those sequences count as whitespace.
 * Nesting is bounded by the schema (maps at most 5 deep, arrays hold only
 * scalars) plus MAX_ANY_DEPTH inside free-form jsonstring values, so hostile
 * input like '['.repeat(1e5) fails fast instead of exhausting the stack.
 */
import { ApiError, type ErrorCode } from '../errors.ts';
import {
  K_ARRAY, K_BOOLEAN, K_DATE, K_FLOAT, K_JSONSTRING, K_LONG, K_MAP, K_STRING,
  nextStamp, type CompiledField, type CompiledSchema,
} from './compiled.ts';
import { decodeLong, isDate, isLong, quote } from './scalars.ts';

const MAX_ANY_DEPTH = 512;

// Scanner state. Scanning is synchronous and never re-entered.
let S = '';
let P = 0;
let BUILD = false;
let CTX = '';
let NUM_INT = false;

function fail(code: ErrorCode, path: string, msg: string): never {
  throw new ApiError(code, `${CTX}field "${path}": ${msg}`);
}

function at(path: string, idx: number): string {
  return idx < 0 ? path : `${path}[${idx}]`;
}

/** The input at the current position, for messages. */
function here(): string {
  return P >= S.length ? 'end of value' : quote(S.slice(P, P + 65));
}

/** The token at the current position (up to a delimiter), for messages. */
function token(): string {
  let i = P;
  for (; i < S.length && i - P < 64; i++) {
    const c = S.charCodeAt(i);
    if (c === 44 || c === 93 || c === 125 || c === 58 || c === 32 || c === 92) break;
  }
  return i === P ? here() : quote(S.slice(P, i));
}

/** Sets o[k] = v, also for k = "__proto__" (which must not change the prototype). */
export function setProp(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

/**
 * Validates (build = false) or decodes (build = true) the JSON text of an
 * array or map field against its compiled field.
 *
 * @param ctx message prefix naming the location, e.g. `line 3, `
 * @throws ApiError E18110 (E18104 for a bad nested date) naming the field path
 */
export function scanJsonField(text: string, f: CompiledField, ctx: string, build: boolean): unknown {
  S = text;
  P = 0;
  BUILD = build;
  CTX = ctx;
  try {
    ws();
    const v = f.kind === K_ARRAY ? arrayValue(f.elem, f.path) : mapValue(f.nested as CompiledSchema, f.path);
    ws();
    if (P !== S.length) fail('E18110', f.path, `unexpected ${here()} after the JSON value`);
    return v;
  } finally {
    S = ''; // do not keep a request body alive
  }
}

function ws(): void {
  for (;;) {
    const c = S.charCodeAt(P);
    if (c === 32 || c === 10 || c === 13 || c === 9) P++;
    else if (c === 92) {
      const d = S.charCodeAt(P + 1);
      if (d === 110 || d === 116 || d === 114) P += 2;
      else return;
    } else return;
  }
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Scans a JSON number at P; returns its start or -1. Sets NUM_INT. */
function number(): number {
  const start = P;
  let c = S.charCodeAt(P);
  if (c === 45) c = S.charCodeAt(++P);
  if (c === 48) c = S.charCodeAt(++P);
  else if (c >= 49 && c <= 57) {
    do c = S.charCodeAt(++P);
    while (isDigit(c));
  } else return -1;
  NUM_INT = true;
  if (c === 46) {
    NUM_INT = false;
    if (!isDigit(S.charCodeAt(++P))) return -1;
    do c = S.charCodeAt(++P);
    while (isDigit(c));
  }
  if (c === 101 || c === 69) {
    NUM_INT = false;
    c = S.charCodeAt(++P);
    if (c === 43 || c === 45) c = S.charCodeAt(++P);
    if (!isDigit(c)) return -1;
    do c = S.charCodeAt(++P);
    while (isDigit(c));
  }
  return start;
}

function longValue(path: string, idx: number): unknown {
  const from = P;
  const start = number();
  if (start < 0 || !NUM_INT) {
    P = from;
    fail('E18110', at(path, idx), `${token()} is not a long`);
  }
  if (!isLong(S, start, P)) fail('E18110', at(path, idx), `${quote(S.slice(start, P))} is out of the int64 range`);
  return BUILD ? decodeLong(S.slice(start, P)) : undefined;
}

function floatValue(path: string, idx: number): unknown {
  const from = P;
  const start = number();
  if (start < 0) {
    P = from;
    fail('E18110', at(path, idx), `${token()} is not a float`);
  }
  const n = Number(S.slice(start, P));
  if (!Number.isFinite(n)) fail('E18110', at(path, idx), `${quote(S.slice(start, P))} is out of the float64 range`);
  return n;
}

/** Scans a JSON string at P (which must be '"') and returns its value. */
function stringToken(path: string, idx: number): string {
  let i = P + 1;
  let from = i;
  let out = '';
  for (;;) {
    const c = S.charCodeAt(i);
    if (c === 34) break;
    if (c === 92) {
      out += S.slice(from, i);
      const d = S.charCodeAt(i + 1);
      i += 2;
      if (d === 34) out += '"';
      else if (d === 92) out += '\\';
      else if (d === 47) out += '/';
      else if (d === 110) out += '\n';
      else if (d === 116) out += '\t';
      else if (d === 114) out += '\r';
      else if (d === 98) out += '\b';
      else if (d === 102) out += '\f';
      else if (d === 117 && /^[0-9a-fA-F]{4}$/.test(S.slice(i, i + 4))) {
        out += String.fromCharCode(parseInt(S.slice(i, i + 4), 16));
        i += 4;
      } else {
        P = i - 2;
        fail('E18110', at(path, idx), `bad escape ${here()} in a JSON string`);
      }
      from = i;
      continue;
    }
    if (!(c >= 32)) {
      P = i;
      fail('E18110', at(path, idx), c !== c ? 'unterminated JSON string' : 'control character in a JSON string');
    }
    i++;
  }
  P = i + 1;
  return out + S.slice(from, i);
}

function stringValue(path: string, idx: number): string {
  if (S.charCodeAt(P) !== 34) fail('E18110', at(path, idx), `${here()} is not a JSON string`);
  return stringToken(path, idx);
}

function arrayValue(elem: number, path: string): unknown {
  if (S.charCodeAt(P) !== 91) fail('E18110', path, `${here()} is not a JSON array`);
  P++;
  ws();
  const out: unknown[] | undefined = BUILD ? [] : undefined;
  if (S.charCodeAt(P) === 93) {
    P++;
    return out;
  }
  for (let n = 0; ; n++) {
    const v = elem === K_LONG ? longValue(path, n) : elem === K_FLOAT ? floatValue(path, n) : stringValue(path, n);
    if (out !== undefined) out.push(v);
    ws();
    const c = S.charCodeAt(P);
    if (c === 44) {
      P++;
      ws();
    } else if (c === 93) {
      P++;
      return out;
    } else fail('E18110', path, `expected ',' or ']' at ${here()}`);
  }
}

function mapValue(cs: CompiledSchema, path: string): unknown {
  if (S.charCodeAt(P) !== 123) fail('E18110', path, `${here()} is not a JSON object`);
  P++;
  ws();
  const stamp = nextStamp(cs);
  const out: Record<string, unknown> | undefined = BUILD ? {} : undefined;
  if (S.charCodeAt(P) === 125) P++;
  else {
    for (;;) {
      if (S.charCodeAt(P) !== 34) fail('E18110', path, `expected a key at ${here()}`);
      const key = stringToken(path, -1);
      const f = cs.byKey.get(key);
      if (f === undefined) fail('E18110', `${path}.${key}`, 'not in the schema');
      if (cs.stamps[f.index] === stamp) fail('E18110', f.path, 'duplicate key');
      ws();
      if (S.charCodeAt(P) !== 58) fail('E18110', f.path, `expected ':' at ${here()}`);
      P++;
      ws();
      if (S.startsWith('null', P)) {
        P += 4; // null = absent, as the SDKs skip nil values
      } else {
        cs.stamps[f.index] = stamp;
        const v = typedValue(f);
        if (out !== undefined) setProp(out, key, v);
      }
      ws();
      const c = S.charCodeAt(P);
      if (c === 44) {
        P++;
        ws();
      } else if (c === 125) {
        P++;
        break;
      } else fail('E18110', path, `expected ',' or '}' at ${here()}`);
    }
  }
  for (const r of cs.required) {
    if (cs.stamps[r.index] !== stamp) fail('E18110', r.path, 'required field is missing');
  }
  return out;
}

function typedValue(f: CompiledField): unknown {
  switch (f.kind) {
    case K_LONG:
      return longValue(f.path, -1);
    case K_FLOAT:
      return floatValue(f.path, -1);
    case K_STRING:
      return stringValue(f.path, -1);
    case K_DATE: {
      const start = P;
      const s = stringValue(f.path, -1);
      if (!isDate(s, 0, s.length)) {
        P = start;
        fail('E18104', f.path, `${here()} is not an RFC 3339 date`);
      }
      return s;
    }
    case K_BOOLEAN:
      if (S.startsWith('true', P)) {
        P += 4;
        return true;
      }
      if (S.startsWith('false', P)) {
        P += 5;
        return false;
      }
      return fail('E18110', f.path, `${token()} is not a boolean`);
    case K_JSONSTRING:
      return anyValue(f.path, 0);
    case K_ARRAY:
      return arrayValue(f.elem, f.path);
    default:
      return mapValue(f.nested as CompiledSchema, f.path);
  }
}

/** Any JSON value (jsonstring fields inside maps are free-form). */
function anyValue(path: string, depth: number): unknown {
  const c = S.charCodeAt(P);
  if (c === 34) return stringToken(path, -1);
  if (c === 123 || c === 91) {
    if (depth >= MAX_ANY_DEPTH) fail('E18110', path, `JSON nested deeper than ${MAX_ANY_DEPTH} levels`);
    P++;
    ws();
    const close = c === 123 ? 125 : 93;
    const obj: Record<string, unknown> | undefined = BUILD && c === 123 ? {} : undefined;
    const arr: unknown[] | undefined = BUILD && c === 91 ? [] : undefined;
    if (S.charCodeAt(P) === close) {
      P++;
      return obj ?? arr;
    }
    for (;;) {
      if (c === 123) {
        if (S.charCodeAt(P) !== 34) fail('E18110', path, `expected a key at ${here()}`);
        const key = stringToken(path, -1);
        ws();
        if (S.charCodeAt(P) !== 58) fail('E18110', path, `expected ':' at ${here()}`);
        P++;
        ws();
        const v = anyValue(path, depth + 1);
        if (obj !== undefined) setProp(obj, key, v);
      } else {
        const v = anyValue(path, depth + 1);
        if (arr !== undefined) arr.push(v);
      }
      ws();
      const d = S.charCodeAt(P);
      if (d === 44) {
        P++;
        ws();
      } else if (d === close) {
        P++;
        return obj ?? arr;
      } else fail('E18110', path, `unexpected ${here()} in JSON`);
    }
  }
  if (S.startsWith('true', P)) {
    P += 4;
    return true;
  }
  if (S.startsWith('false', P)) {
    P += 5;
    return false;
  }
  if (S.startsWith('null', P)) {
    P += 4;
    return null;
  }
  const from = P;
  const start = number();
  if (start < 0) {
    P = from;
    fail('E18110', path, `${token()} is not valid JSON`);
  }
  const n = Number(S.slice(start, P));
  if (!Number.isFinite(n)) fail('E18110', path, `${quote(S.slice(start, P))} is out of the float64 range`);
  return n;
}
