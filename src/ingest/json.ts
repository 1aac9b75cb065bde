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
import {
  K_ARRAY, K_BOOLEAN, K_DATE, K_FLOAT, K_JSONSTRING, K_LONG, K_STRING,
  nextStamp, type CompiledField, type CompiledSchema,
} from './compiled.ts';
import { anyValue, at, fail, here, J, number, setProp, stringToken, token, ws } from './json-lex.ts';
import { decodeLong, isDate, isLong, quote } from './scalars.ts';

export { setProp } from './json-lex.ts';

/**
 * Validates (build = false) or decodes (build = true) the JSON text of an
 * array or map field against its compiled field.
 *
 * @param ctx message prefix naming the location, e.g. `line 3, `
 * @throws ApiError E18110 (E18104 for a bad nested date) naming the field path
 */
export function scanJsonField(text: string, f: CompiledField, ctx: string, build: boolean): unknown {
  J.s = text;
  J.p = 0;
  J.build = build;
  J.ctx = ctx;
  try {
    ws();
    const v = f.kind === K_ARRAY ? arrayValue(f.elem, f.path) : mapValue(f.nested as CompiledSchema, f.path);
    ws();
    if (J.p !== J.s.length) fail('E18110', f.path, `unexpected ${here()} after the JSON value`);
    return v;
  } finally {
    J.s = ''; // do not keep a request body alive
  }
}

function longValue(path: string, idx: number): unknown {
  const from = J.p;
  const start = number();
  if (start < 0 || !J.numInt) {
    J.p = from;
    fail('E18110', at(path, idx), `${token()} is not a long`);
  }
  if (!isLong(J.s, start, J.p)) fail('E18110', at(path, idx), `${quote(J.s.slice(start, J.p))} is out of the int64 range`);
  return J.build ? decodeLong(J.s.slice(start, J.p)) : undefined;
}

function floatValue(path: string, idx: number): unknown {
  const from = J.p;
  const start = number();
  if (start < 0) {
    J.p = from;
    fail('E18110', at(path, idx), `${token()} is not a float`);
  }
  const n = Number(J.s.slice(start, J.p));
  if (!Number.isFinite(n)) fail('E18110', at(path, idx), `${quote(J.s.slice(start, J.p))} is out of the float64 range`);
  return n;
}

function stringValue(path: string, idx: number): string {
  if (J.s.charCodeAt(J.p) !== 34) fail('E18110', at(path, idx), `${here()} is not a JSON string`);
  return stringToken(path, idx);
}

function arrayValue(elem: number, path: string): unknown {
  if (J.s.charCodeAt(J.p) !== 91) fail('E18110', path, `${here()} is not a JSON array`);
  J.p++;
  ws();
  const out: unknown[] | undefined = J.build ? [] : undefined;
  if (J.s.charCodeAt(J.p) === 93) {
    J.p++;
    return out;
  }
  for (let n = 0; ; n++) {
    const v = elem === K_LONG ? longValue(path, n) : elem === K_FLOAT ? floatValue(path, n) : stringValue(path, n);
    if (out !== undefined) out.push(v);
    ws();
    const c = J.s.charCodeAt(J.p);
    if (c === 44) {
      J.p++;
      ws();
    } else if (c === 93) {
      J.p++;
      return out;
    } else fail('E18110', path, `expected ',' or ']' at ${here()}`);
  }
}

function mapValue(cs: CompiledSchema, path: string): unknown {
  if (J.s.charCodeAt(J.p) !== 123) fail('E18110', path, `${here()} is not a JSON object`);
  J.p++;
  ws();
  const stamp = nextStamp(cs);
  const out: Record<string, unknown> | undefined = J.build ? {} : undefined;
  if (J.s.charCodeAt(J.p) === 125) J.p++;
  else {
    for (;;) {
      if (J.s.charCodeAt(J.p) !== 34) fail('E18110', path, `expected a key at ${here()}`);
      const key = stringToken(path, -1);
      const f = cs.byKey.get(key);
      if (f === undefined) fail('E18110', `${path}.${key}`, 'not in the schema');
      if (cs.stamps[f.index] === stamp) fail('E18110', f.path, 'duplicate key');
      ws();
      if (J.s.charCodeAt(J.p) !== 58) fail('E18110', f.path, `expected ':' at ${here()}`);
      J.p++;
      ws();
      if (J.s.startsWith('null', J.p)) {
        J.p += 4; // null = absent, as the SDKs skip nil values
      } else {
        cs.stamps[f.index] = stamp;
        const v = typedValue(f);
        if (out !== undefined) setProp(out, key, v);
      }
      ws();
      const c = J.s.charCodeAt(J.p);
      if (c === 44) {
        J.p++;
        ws();
      } else if (c === 125) {
        J.p++;
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
      const start = J.p;
      const s = stringValue(f.path, -1);
      if (!isDate(s, 0, s.length)) {
        J.p = start;
        fail('E18104', f.path, `${here()} is not an RFC 3339 date`);
      }
      return s;
    }
    case K_BOOLEAN:
      if (J.s.startsWith('true', J.p)) {
        J.p += 4;
        return true;
      }
      if (J.s.startsWith('false', J.p)) {
        J.p += 5;
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
