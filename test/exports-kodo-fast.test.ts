/**
 * The kodo parquet fast path (src/exports/kodo/fused.ts: stored lines
 * straight into DuckDB chunks) writes the same parquet rows as the general
 * path (decodeColumns + the columnar loader), for generated lines in every
 * escape mode: escapes, missing fields, unknown keys, empty segments and
 * values that are not valid for their type (a repo whose schema changed).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import fc from 'fast-check';
import { loadConfig } from '../src/config.ts';
import { columnValues, outColumns } from '../src/exports/kodo/columns.ts';
import { fusedLoader } from '../src/exports/kodo/fused.ts';
import { ParquetEngine } from '../src/exports/kodo/parquet.ts';
import type { EscapeMode } from '../src/ingest/escapes.ts';
import { compileSchema, decodeColumns } from '../src/ingest/points.ts';
import type { SchemaField } from '../src/ingest/types.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'kodo-fast-'));
const spool = path.join(dir, 'spool');
const config = loadConfig({}, { dataDir: dir, logLevel: 'silent' });
const engine = ParquetEngine.acquire(config, spool);
const reader = await DuckDBInstance.create(':memory:');
const conn = await reader.connect();
after(async () => {
  conn.closeSync();
  reader.closeSync();
  await engine.release();
  rmSync(dir, { recursive: true, force: true });
});

const SCHEMA: SchemaField[] = [
  { key: 's', valtype: 'string', required: false },
  { key: 'n', valtype: 'long', required: false },
  { key: 'x', valtype: 'float', required: false },
  { key: 'b', valtype: 'boolean', required: false },
  { key: 't', valtype: 'date', required: false },
  { key: 's2', valtype: 'string', required: false },
];

/** Text that may appear in a stored value: anything but TAB and LF. */
const junk = fc.string({ unit: fc.constantFrom('\\', 't', 'n', 'r', 'x', '\r', '=', '"', '中', '1', '.', 'e', '-', '+', ' ', 'Z', ':'), maxLength: 14 });
const anyText = fc.string({ unit: 'binary', maxLength: 12 }).map((s) => s.replace(/[\t\n]/g, ' '));
const d2 = (lo: number, hi: number): fc.Arbitrary<string> => fc.integer({ min: lo, max: hi }).map((v) => String(v).padStart(2, '0'));
const date = fc.tuple(fc.integer({ min: 0, max: 9999 }), d2(0, 13), d2(0, 32), fc.constantFrom('T', 't', ' ', 'x'), d2(0, 24), d2(0, 60), d2(0, 61),
  fc.option(fc.string({ unit: fc.constantFrom('0', '1', '5', '9'), maxLength: 11 })),
  fc.oneof(fc.constantFrom('Z', 'z', '', 'Q'), fc.tuple(fc.constantFrom('+', '-'), d2(0, 24), d2(0, 60)).map(([s, h, m]) => `${s}${h}:${m}`)))
  .map(([y, mo, d, sep, h, mi, s, f, z]) => `${String(y).padStart(4, '0')}-${mo}-${d}${sep}${h}:${mi}:${s}${f === null ? '' : '.' + f}${z}`);
const long = fc.oneof(
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
  fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n }).map((v) => (v >= 0n ? '+' : '') + v.toString()),
  fc.integer().map((v) => '00' + Math.abs(v)),
  junk,
);
const float = fc.oneof(fc.double().map(String), fc.constantFrom('1.', '.5', '-.5e3', '1e400', '-0', '+7', '1E+2', 'NaN', 'Infinity', '0x10', '1_0', ' 1'), junk);
const bool = fc.oneof(fc.constantFrom('true', 'false', 'TRUE', 'True', ''), junk);
const long2 = fc.constantFrom('a-long-repeated-value.example', 'ünïcode-long-value', 'with\\tescape-and-long', 'short\\t');
const VALUES: Record<string, fc.Arbitrary<string>> = { s: fc.oneof(junk, anyText, long2), n: long, x: float, b: bool, t: fc.oneof(date, junk), s2: fc.oneof(junk, anyText, long2) };

/** A stored line: some of the fields in some order, maybe an unknown key and empty segments. */
const line = fc.tuple(
  fc.shuffledSubarray(SCHEMA.map((f) => f.key)),
  fc.record(VALUES),
  fc.option(fc.constantFrom('zz=1', 'ss=\\t', 'n2=5')),
  fc.boolean(),
).map(([keys, vals, extra, gap]) => {
  const segs = keys.map((k) => `${k}=${vals[k]}`);
  if (extra !== null) segs.splice(1, 0, extra);
  if (gap) segs.splice(1, 0, '');
  return segs.join('\t');
});

function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return `${v}n`;
  if (v !== null && typeof v === 'object' && 'micros' in v) return `${(v as { micros: bigint }).micros}us`;
  if (typeof v === 'number' && Object.is(v, -0)) return '-0';
  return v;
}

async function rows(file: string): Promise<unknown[][]> {
  const r = await conn.runAndReadAll(`SELECT * FROM read_parquet('${file}')`);
  return r.getRows().map((row) => row.map(plain));
}

async function types(file: string): Promise<unknown[][]> {
  return (await conn.runAndReadAll(`SELECT name, type FROM parquet_schema('${file}')`)).getRows();
}

let seq = 0;
async function bothPaths(lines: string[], mode: EscapeMode, fields?: Record<string, string>): Promise<void> {
  const schema = compileSchema(SCHEMA, mode);
  const cols = outColumns(SCHEMA, fields);
  const fused = fusedLoader(cols, schema);
  assert.ok(fused, 'scalar columns take the fast path');
  const top = SCHEMA.map(() => new Array<unknown>(lines.length));
  decodeColumns(lines, 0, lines.length, schema, top);
  const a = path.join(spool, `a${++seq}.parquet`);
  const b = path.join(spool, `b${seq}.parquet`);
  const js = await engine.openTable(cols.map((c) => c.field));
  await js.append(columnValues(cols, top, lines.length), lines.length);
  await js.writeTo(a);
  js.close();
  const sql = await engine.openTable(cols.map((c) => c.field), fused);
  await sql.appendLines(['ignored', ...lines], 1, lines.length);
  await sql.writeTo(b);
  sql.close();
  assert.deepEqual(await types(b), await types(a));
  assert.deepEqual(await rows(b), await rows(a), lines.join('\n'));
}

describe('kodo parquet straight from stored lines', () => {
  for (const mode of ['reference', 'unescape', 'verbatim'] as const) {
    it(`writes the same parquet rows as the general decoder for generated lines in the ${mode} escape mode`, async () => {
      await fc.assert(fc.asyncProperty(fc.array(line, { minLength: 1, maxLength: 40 }), (lines) => bothPaths(lines, mode)), { numRuns: 60 });
    });
  }

  it('undoes every escape of the reference mode exactly like unescapeText', async () => {
    await bothPaths(['s=\\\\t\ts2=a\\\\\\tb', 's=\\\\\\\\\ts2=\\', 's=\\x\\n\\r\\t\\\\n\ts2=end\\\\', 's=\ts2=\\\\\\'], 'reference');
    await bothPaths(['s=\\\\t\ts2=a\\\\\\tb', 's=\\x\\n\\r\\t\\\\n'], 'unescape');
  });

  it('renames and picks columns as the fields mapping says', async () => {
    await bothPaths(['s=a\tn=1\tt=2017-01-02T03:04:05.1234567+08:00', 'n=-5\tx=1.5'], 'reference', { when: '#t', count: 'n', name: '#s' });
  });

  it('leaves arrays, maps, jsonstring and nested references to the general decoder', () => {
    const schema: SchemaField[] = [
      { key: 'a', valtype: 'array', elemtype: 'long', required: false },
      { key: 'j', valtype: 'jsonstring', required: false },
      { key: 'm', valtype: 'map', required: false, schema: [{ key: 'k', valtype: 'string', required: false }] },
      { key: 's', valtype: 'string', required: false },
    ];
    const cs = compileSchema(schema);
    assert.equal(fusedLoader(outColumns(schema, undefined), cs), undefined);
    assert.equal(fusedLoader(outColumns(schema, { k: '#m.k' }), cs), undefined);
    assert.equal(fusedLoader(outColumns(schema, { j: '#j' }), cs), undefined);
    assert.ok(fusedLoader(outColumns(schema, { s: '#s' }), cs));
  });
});
