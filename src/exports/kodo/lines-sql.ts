/**
 * Parquet from stored lines without decoding them in JS: the lines go into
 * DuckDB as one VARCHAR column (cheap to append) and a SELECT splits and
 * converts them with vectorized string functions when the file is written.
 * It reproduces decodeColumns + the loader's writers (src/ingest/points.ts,
 * src/sql/load.ts) exactly for top-level scalar columns (string, long,
 * float, boolean, date) in every escape mode: a key is found as `key=` at
 * the start of the line or after a TAB (stored values hold no raw TAB), a
 * value that is not valid for its type becomes NULL as in the loader, and
 * string escapes are undone as unescapeText does. Arrays, maps, jsonstring
 * and nested references keep the JS path (linesSelect answers undefined).
 * test/exports-kodo-fast.test.ts proves equality on generated points.
 */
import type { EscapeMode } from '../../ingest/escapes.ts';
import { inputTypeSql, quoteIdent, quoteLiteral } from '../../sql/types.ts';
import type { OutColumn } from './columns.ts';

const TAB = 'chr(9)';

/** The raw text of `key`'s value in line `l`, NULL when the line lacks the field. */
function rawValue(key: string): string {
  const k = quoteLiteral(key + '=');
  const at = `CASE WHEN starts_with(l, ${k}) THEN 1 ELSE nullif(strpos(l, ${TAB} || ${k}), 0) + 1 END`;
  return `split_part(substr(l, (${at}) + ${key.length + 1}), ${TAB}, 1)`;
}

/** unescapeText in SQL. */
function unescapeSql(v: string, mode: EscapeMode): string {
  if (mode === 'verbatim') return v;
  const tn = (x: string): string => `replace(replace(${x}, '\\t', ${TAB}), '\\n', chr(10))`;
  if (mode === 'unescape') return `CASE WHEN contains(${v}, '\\') THEN ${tn(v)} ELSE ${v} END`;
  // Reference mode: `\\` pairs are taken left to right first, so split on them,
  // undo the other escapes in each part and join with single backslashes.
  return `CASE WHEN contains(${v}, '\\') THEN array_to_string(list_transform(string_split(${v}, '\\\\'), x -> replace(${tn('x')}, '\\r', chr(13))), '\\') ELSE ${v} END`;
}

const DATE_RE = String.raw`^(\d\d\d\d)-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:[Zz]|([+-])(\d\d):(\d\d))$`;
const FLOAT_RE = String.raw`[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?`;

/** writeRfc3339Micros in SQL: the same ranges (day 1..31 rolls over, second 60 allowed), fraction truncated to microseconds. */
function dateSql(m: string): string {
  const n = (g: string): string => `TRY_CAST(nullif(${m}.${g}, '') AS BIGINT)`;
  const ok = `${m}.y <> '' AND ${n('mo')} BETWEEN 1 AND 12 AND ${n('d')} BETWEEN 1 AND 31 AND ${n('h')} <= 23 AND ${n('mi')} <= 59 AND ${n('s')} <= 60` +
    ` AND (${m}.sg = '' OR (${n('oh')} <= 23 AND ${n('om')} <= 59))`;
  const secs = `((make_date(${n('y')}, ${n('mo')}, 1) - DATE '1970-01-01') + ${n('d')} - 1) * 86400 + ${n('h')} * 3600 + ${n('mi')} * 60 + ${n('s')}` +
    ` - CASE ${m}.sg WHEN '+' THEN ${n('oh')} * 3600 + ${n('om')} * 60 WHEN '-' THEN -(${n('oh')} * 3600 + ${n('om')} * 60) ELSE 0 END`;
  const micros = `CAST(rpad(left(${m}.f, 6), 6, '0') AS BIGINT)`;
  return `CASE WHEN ${ok} THEN make_timestamp((${secs}) * 1000000 + ${micros}) END`;
}

function convertSql(c: OutColumn, v: string, mode: EscapeMode): string | undefined {
  switch (c.field.valtype) {
    case 'string': return unescapeSql(v, mode);
    case 'long': return `CASE WHEN regexp_full_match(${v}, '[+-]?[0-9]+') THEN TRY_CAST(${v} AS BIGINT) END`;
    case 'float': return `CASE WHEN regexp_full_match(${v}, ${quoteLiteral(FLOAT_RE)}) AND isfinite(TRY_CAST(${v} AS DOUBLE)) THEN TRY_CAST(${v} AS DOUBLE) END`;
    case 'boolean': return `CASE ${v} WHEN 'true' THEN true WHEN 'false' THEN false END`;
    case 'date': return dateSql(`m${v.slice(1)}`);
    default: return undefined;
  }
}

/**
 * The SELECT turning table `table` (one VARCHAR column `l` of stored lines,
 * in order) into the output columns, or undefined when a column needs the
 * JS decoder (not a top-level scalar).
 */
export function linesSelect(cols: readonly OutColumn[], schemaKeys: readonly string[], mode: EscapeMode, table: string): string | undefined {
  const inner: string[] = [];
  const middle: string[] = [];
  const outer: string[] = [];
  for (const [i, c] of cols.entries()) {
    if (c.rest.length > 0) return undefined;
    const conv = convertSql(c, `v${i}`, mode);
    if (conv === undefined) return undefined;
    inner.push(`${rawValue(schemaKeys[c.top] as string)} AS v${i}`);
    middle.push(c.field.valtype === 'date' ? `regexp_extract(v${i}, ${quoteLiteral(DATE_RE)}, ['y','mo','d','h','mi','s','f','sg','oh','om']) AS m${i}` : `v${i}`);
    outer.push(`CAST(${conv} AS ${inputTypeSql(c.field)}) AS ${quoteIdent(c.name)}`);
  }
  if (cols.length === 0) return undefined;
  return `SELECT ${outer.join(', ')} FROM (SELECT ${middle.join(', ')} FROM (SELECT ${inner.join(', ')} FROM ${table}))`;
}
