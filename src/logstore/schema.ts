import { ApiError } from '../errors.ts';

/** LogDB field types (official-extensions 3.2). ip and geo_point are not served. */
export type LogType = 'string' | 'long' | 'float' | 'date' | 'boolean' | 'object';
const TYPES = new Set<LogType>(['string', 'long', 'float', 'date', 'boolean', 'object']);

/** One schema entry as clients send and read it. */
export interface LogField {
  key: string;
  valtype: LogType;
  analyzer?: string;
  primary?: boolean;
  nested?: LogField[];
  description?: string | null;
}

/**
 * How an analyzer is indexed. Each FTS group is one FTS5 table with its own
 * tokenizer (FTS5 tokenizers are per table, not per column); `keyword` is an
 * exact match on an indexed column, `no` is stored but not searchable.
 */
export type IndexKind = { fts: string; tokenize: string } | { keyword: true } | { none: true };

// Whitespace-only splitting: every ASCII punctuation character becomes a token character.
const PUNCT = "!#$%&()*+,-./:;<=>?@[\\]^_`{|}~";
const quoteOpt = (s: string): string => `'${s.replace(/'/g, "''")}'`;

const ANALYZERS: Record<string, IndexKind> = {
  standard: { fts: 'std', tokenize: 'unicode61 remove_diacritics 2' },
  simple: { fts: 'std', tokenize: 'unicode61 remove_diacritics 2' },
  stop: { fts: 'std', tokenize: 'unicode61 remove_diacritics 2' },
  whitespace: { fts: 'ws', tokenize: `unicode61 remove_diacritics 0 tokenchars ${quoteOpt(PUNCT)}` },
  path: { fts: 'path', tokenize: `unicode61 remove_diacritics 0 tokenchars ${quoteOpt(PUNCT.replace('/', ''))}` },
  // Chinese analyzers: trigram substring matching (3+ characters); see docs/logdb.md.
  index_ansj: { fts: 'cjk', tokenize: 'trigram' },
  dic_ansj: { fts: 'cjk', tokenize: 'trigram' },
  search_ansj: { fts: 'cjk', tokenize: 'trigram' },
  to_ansj: { fts: 'cjk', tokenize: 'trigram' },
  user_ansj: { fts: 'cjk', tokenize: 'trigram' },
  keyword: { keyword: true },
  no: { none: true },
};

/** The index kind of an analyzer name; undefined when unknown. */
export function analyzerKind(name: string): IndexKind | undefined {
  return Object.hasOwn(ANALYZERS, name) ? ANALYZERS[name] : undefined;
}

export const REPO_NAME_RE = /^[a-z][a-z0-9_]{0,127}$/;
const KEY_RE = /^[a-zA-Z_][a-zA-Z0-9_]{0,127}$/;
const MAX_DEPTH = 5;
const MAX_FIELDS = 500;

/** A leaf or object field flattened to its dotted path. */
export interface FlatField {
  path: string;
  type: LogType;
  /** For strings: the analyzer name (default standard). */
  analyzer: string;
  /** Object without a nested schema: its keys are found in the stored JSON. */
  dynamic: boolean;
}

/**
 * Validates and normalises a schema (E8108 naming the entry): known types,
 * key syntax, analyzers only on strings, nesting at most 5 deep, no
 * duplicate keys. Empty strings and nulls sent by the SDK mean "not set".
 */
export function normaliseSchema(raw: unknown, depth = 1): LogField[] {
  if (!Array.isArray(raw)) throw new ApiError('E8108', 'schema must be an array of entries');
  if (depth > MAX_DEPTH) throw new ApiError('E8108', `object fields nest at most ${MAX_DEPTH} deep`);
  const seen = new Set<string>();
  return raw.map((e: unknown, i): LogField => {
    if (typeof e !== 'object' || e === null) throw new ApiError('E8108', `schema[${i}] must be an object`);
    const r = e as Record<string, unknown>;
    const key = r.key;
    if (typeof key !== 'string' || !KEY_RE.test(key)) throw new ApiError('E8108', `schema[${i}].key ${JSON.stringify(key)} must match ${KEY_RE.source}`);
    if (seen.has(key)) throw new ApiError('E8108', `duplicate field key "${key}"`);
    seen.add(key);
    const valtype = r.valtype;
    if (typeof valtype !== 'string' || !TYPES.has(valtype as LogType)) {
      throw new ApiError('E8108', `field "${key}": valtype ${JSON.stringify(valtype)} is not one of ${[...TYPES].join(', ')}`);
    }
    const out: LogField = { key, valtype: valtype as LogType };
    const analyzer = r.analyzer ?? '';
    if (typeof analyzer !== 'string') throw new ApiError('E8108', `field "${key}": analyzer must be a string`);
    if (analyzer !== '') {
      if (valtype !== 'string') throw new ApiError('E8108', `field "${key}": only string fields take an analyzer`);
      if (!analyzerKind(analyzer)) throw new ApiError('E8108', `field "${key}": unknown analyzer "${analyzer}" (known: ${Object.keys(ANALYZERS).join(', ')})`);
      out.analyzer = analyzer;
    }
    if (r.primary === true) out.primary = true;
    if (r.nested !== undefined && r.nested !== null) {
      if (valtype !== 'object') throw new ApiError('E8108', `field "${key}": only object fields take nested entries`);
      out.nested = normaliseSchema(r.nested, depth + 1);
    }
    if (typeof r.description === 'string') out.description = r.description;
    else out.description = null;
    return out;
  });
}

/** Flattens a schema to dotted paths (objects with a nested schema are not leaves). */
export function flatten(schema: readonly LogField[], prefix = ''): FlatField[] {
  const out: FlatField[] = [];
  for (const f of schema) {
    const path = prefix + f.key;
    if (f.valtype === 'object' && f.nested && f.nested.length > 0) out.push(...flatten(f.nested, `${path}.`));
    else out.push({ path, type: f.valtype, analyzer: f.valtype === 'string' ? (f.analyzer ?? 'standard') : '', dynamic: f.valtype === 'object' });
  }
  if (out.length > MAX_FIELDS) throw new ApiError('E8108', `a repo holds at most ${MAX_FIELDS} fields`);
  return out;
}

/**
 * Checks that `next` only adds fields or changes analyzers of `prev`
 * (official-extensions 3.1: no removal, no retype). E8108 naming the field.
 */
export function checkEvolution(prev: readonly LogField[], next: readonly LogField[], prefix = ''): void {
  for (const p of prev) {
    const n = next.find((f) => f.key === p.key);
    if (!n) throw new ApiError('E8108', `field "${prefix}${p.key}" cannot be removed`);
    if (n.valtype !== p.valtype) throw new ApiError('E8108', `field "${prefix}${p.key}" cannot change type ${p.valtype} -> ${n.valtype}`);
    if (p.nested) checkEvolution(p.nested, n.nested ?? [], `${prefix}${p.key}.`);
  }
}

/**
 * Retention as the SDK writes and reads it: `"<N>d"` (0 = keep forever) or
 * `"-1"` (none). Returns days (0 = forever) or throws E8106.
 */
export function parseRetention(raw: unknown): number {
  if (raw === '-1' || raw === -1) return 0;
  if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0) return raw;
  if (typeof raw !== 'string' || !/^(0|[1-9][0-9]{0,4})d$/.test(raw)) {
    throw new ApiError('E8106', `retention ${JSON.stringify(raw)} must look like "7d" (0d or "-1" = keep forever)`);
  }
  return Number(raw.slice(0, -1));
}
