/**
 * A repo schema precomputed for the ingest hot path: valtypes become small
 * integers (a switch on a Smi beats string compares), keys get a Map and a
 * `key=` prefix for allocation-free matching, and every field gets an index
 * into a stamp array used to detect duplicate and missing fields without
 * allocating per line.
 */
import { REFERENCE_MODE, type EscapeMode } from './escapes.ts';
import type { SchemaField, ValType } from './types.ts';

export const K_LONG = 0;
export const K_FLOAT = 1;
export const K_STRING = 2;
export const K_DATE = 3;
export const K_BOOLEAN = 4;
export const K_JSONSTRING = 5;
export const K_ARRAY = 6;
export const K_MAP = 7;

const KIND: Record<ValType, number> = {
  long: K_LONG,
  float: K_FLOAT,
  string: K_STRING,
  date: K_DATE,
  boolean: K_BOOLEAN,
  jsonstring: K_JSONSTRING,
  array: K_ARRAY,
  map: K_MAP,
};

/** Human name of a kind, for error messages. */
export const KIND_NAME = ['long', 'float', 'string', 'date', 'boolean', 'jsonstring', 'array', 'map'] as const;

/** One field of a compiled schema. */
export interface CompiledField {
  readonly key: string;
  /** `key + '='`: matched with startsWith, no key slice needed. */
  readonly keyEq: string;
  /** Dotted path from the top level, for messages (`profile.salary`). */
  readonly path: string;
  readonly kind: number;
  /** Element kind for arrays (K_LONG, K_FLOAT or K_STRING), else -1. */
  readonly elem: number;
  readonly required: boolean;
  /** Position in its level's `fields`; index into `stamps`. */
  readonly index: number;
  /** Nested level for maps, else null. */
  readonly nested: CompiledSchema | null;
  /** The repo's escape mode (the same on every level), so value encoders need no extra argument. */
  readonly escapes: EscapeMode;
}

/** A compiled schema level (the top level or a map's nested schema). */
export interface CompiledSchema {
  readonly fields: readonly CompiledField[];
  readonly byKey: ReadonlyMap<string, CompiledField>;
  readonly required: readonly CompiledField[];
  /**
   * Per-field "seen in the current line/object" marks. A field is seen when
   * stamps[index] === stamp; bumping `stamp` clears all marks in O(1).
   * Parsing is synchronous and a level is never re-entered while it is being
   * scanned (arrays cannot hold maps), so one array per level is enough.
   */
  readonly stamps: Uint32Array;
  stamp: number;
  /** The schema this was compiled from. */
  readonly source: readonly SchemaField[];
  /** How string values are escaped on the wire in this repo (its `options.unescapeLine`). */
  readonly escapes: EscapeMode;
}

/**
 * Precomputes the lookups parsePoints/decodeLine/encodePoint need. Compile
 * once per schema version and reuse it for every request.
 *
 * @param fields a schema normalised by validateSchema
 * @param escapes the repo's escape mode (escapeModeOf its options); the
 *   reference mode when omitted
 */
export function compileSchema(fields: readonly SchemaField[], escapes: EscapeMode = REFERENCE_MODE): CompiledSchema {
  return compileLevel(fields, '', escapes);
}

function compileLevel(src: readonly SchemaField[], prefix: string, escapes: EscapeMode): CompiledSchema {
  const fields: CompiledField[] = [];
  const byKey = new Map<string, CompiledField>();
  const required: CompiledField[] = [];
  src.forEach((f, index) => {
    const path = prefix === '' ? f.key : `${prefix}.${f.key}`;
    const kind = KIND[f.valtype];
    const cf: CompiledField = {
      key: f.key,
      keyEq: `${f.key}=`,
      path,
      kind,
      elem: kind === K_ARRAY ? KIND[f.elemtype ?? 'string'] : -1,
      required: f.required,
      index,
      nested: kind === K_MAP ? compileLevel(f.schema ?? [], path, escapes) : null,
      escapes,
    };
    fields.push(cf);
    byKey.set(f.key, cf);
    if (f.required) required.push(cf);
  });
  return { fields, byKey, required, stamps: new Uint32Array(fields.length), stamp: 0, source: src, escapes };
}

/** Starts a new line/object on a level: returns the stamp that marks "seen". */
export function nextStamp(cs: CompiledSchema): number {
  if (cs.stamp === 0xffffffff) {
    cs.stamps.fill(0);
    cs.stamp = 0;
  }
  return ++cs.stamp;
}
