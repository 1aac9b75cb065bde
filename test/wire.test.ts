/**
 * src/sql/wire.ts writes query results straight from DuckDB's vectors into
 * wire lines. It must write exactly what the value path (forEachChunk +
 * encodeColumns) writes, and refuse what it refuses, for any rows and any
 * destination schema: checked here as a property over real DuckDB results.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeColumns, LineSink } from '../src/ingest/encode.ts';
import { compileSchema, encodePoint, type CompiledSchema } from '../src/ingest/points.ts';
import { validateSchema } from '../src/ingest/schema.ts';
import type { Point, SchemaField } from '../src/ingest/types.ts';
import { SqlEngine } from '../src/sql/engine.ts';
import type { SourceStage, StageQueryResult } from '../src/sql/stage.ts';
import { writeShortReal } from '../src/sql/wire.ts';

const RUNS = 150;

const SOURCE: SchemaField[] = validateSchema([
  { key: 'l', valtype: 'long' },
  { key: 'f', valtype: 'float' },
  { key: 's', valtype: 'string' },
  { key: 'b', valtype: 'boolean' },
  { key: 'd', valtype: 'date' },
]);
const source = compileSchema(SOURCE);

/** Queries over the source: plain columns, narrower types, columns typed unlike their field, NaN, dates past 9999. */
const QUERIES = [
  'select * from src',
  'select try_cast(l as INTEGER) as l, try_cast(f as FLOAT) as f, s, b from src',
  'select try_cast(l as SMALLINT) as l, try_cast(l as TINYINT) as t, try_cast(l as UINTEGER) as u from src',
  'select f as l, l as f, s as d, d as s, b as l2 from src',
  "select case when l % 3 = 0 then 'nan'::DOUBLE when l % 3 = 1 then '-inf'::DOUBLE else f end as f, s from src",
  "select d + interval 9000 year as d, l from src",
  'select s, s as s2, l, l as l2, f, [l, l] as al from src',
];

/** Destinations of every escape mode: strings are escaped for the destination's mode on both paths. */
const MODES = ['reference', 'unescape', 'verbatim'] as const;
const KINDS = ['long', 'float', 'string', 'boolean', 'date', 'jsonstring'] as const;
const KEYS = ['l', 'f', 's', 'b', 'd', 't', 'u', 'l2', 's2', 'al'];

const text = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('a\tb', 'x\ny', 'c\r', 'back\\slash', '\\t', 'twelve chars', 'thirteen char', ''),
);
const longValue = fc.oneof(
  fc.integer({ min: -200, max: 200 }),
  fc.integer(),
  fc.constantFrom(2 ** 53 - 1, -(2 ** 53) + 1),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((v) => (v >= -(2n ** 53n) && v <= 2n ** 53n ? Number(v) : v)),
);
/** Doubles of every shape, and many with few decimals (the fast path of writeShortReal). */
const shortDecimal = fc.tuple(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), fc.integer({ min: 0, max: 15 })).map(([m, k]) => m / 10 ** k);
const floatValue = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  shortDecimal,
  fc.constantFrom(0, -0, 0.1, 0.1 + 0.2, 1e21, 1e-7, 1e-6, 3, -2.5, 2 ** 49 - 0.5, 562949953421311.9, 0.000001234),
);
const dateValue = fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true })
  .map((d) => d.toISOString());

const row: fc.Arbitrary<Point> = fc.record(
  { l: longValue, f: floatValue, s: text, b: fc.boolean(), d: dateValue },
  { requiredKeys: [] },
);

/** A destination schema: any subset of the result keys, any kind, some required. */
const destination = fc.array(
  fc.record({ key: fc.constantFrom(...KEYS), valtype: fc.constantFrom(...KINDS), required: fc.boolean() }),
  { minLength: 1, maxLength: 6 },
).map((fs) => {
  const seen = new Set<string>();
  return fs.filter((f) => !seen.has(f.key) && seen.add(f.key)) as SchemaField[];
});

type Outcome = { text: string } | { code: string | undefined; message: string };

function outcome(fn: (sink: LineSink) => void): Outcome {
  const sink = new LineSink();
  try {
    fn(sink);
    return { text: `${sink.count}:${sink.bytes().toString('utf8')}` };
  } catch (err) {
    return { code: (err as { code?: string }).code, message: (err as Error).message };
  }
}

const viaValues = (res: StageQueryResult, cs: CompiledSchema): Outcome =>
  outcome((sink) => res.forEachChunk((cols, n) => encodeColumns(res.fields.map((f) => f.key), cols, n, cs, sink)));
const viaVectors = (res: StageQueryResult, cs: CompiledSchema): Outcome => outcome((sink) => res.encode(cs, sink));

describe('writeShortReal', () => {
  it('writes what String() writes whenever it writes at all', () => {
    let written = 0;
    fc.assert(
      fc.property(fc.oneof(shortDecimal, fc.double({ noNaN: true }), fc.double({ min: -1e6, max: 1e6, noNaN: true })), (v) => {
        fc.pre(!Number.isInteger(v));
        const sink = new LineSink();
        if (!writeShortReal(sink, v)) return;
        written++;
        assert.equal(sink.bytes().toString('latin1'), String(v));
      }),
      { numRuns: 20_000 },
    );
    assert.ok(written > 5_000, `fast path taken ${written} times`); // the property must exercise it
  });
});

describe('wire encoding of query results (vectors -> lines)', () => {
  let engine: SqlEngine;
  let stage: SourceStage;
  let next = 0;

  before(async () => {
    engine = await SqlEngine.create({ memoryLimit: '256MB', threads: 1 });
    stage = await engine.openStage('src', SOURCE);
  });
  after(async () => {
    stage.close();
    await engine.close();
  });

  /** Stages `points` as the next offsets and runs `sql` over exactly them. */
  async function query(points: Point[], sql: string): Promise<StageQueryResult> {
    const base = next;
    // Stored as the wire lines a push would store, then staged as the feeder stages them.
    await stage.appendLines(base, points.map((p) => encodePoint(p, source)), 0);
    next += points.length;
    return stage.query(base, next, sql, 10_000);
  }

  it('writes what the value path writes, and refuses what it refuses', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(row, { minLength: 1, maxLength: 40 }), fc.constantFrom(...QUERIES), destination, fc.constantFrom(...MODES), async (points, sql, dest, mode) => {
        const res = await query(points, sql);
        const cs = compileSchema(validateSchema(dest), mode);
        assert.deepEqual(viaVectors(res, cs), viaValues(res, cs), JSON.stringify([viaVectors(res, cs), viaValues(res, cs)]));
      }),
      { numRuns: RUNS },
    );
  });

  it('writes what the value path writes into the schema the SQL itself creates', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(row, { minLength: 1, maxLength: 40 }), fc.constantFrom(...QUERIES), fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }), async (points, sql, required) => {
        const res = await query(points, sql);
        const cs = compileSchema(validateSchema(res.fields.map((f, i) => ({ ...f, required: required[i] ?? false }))));
        assert.deepEqual(viaVectors(res, cs), viaValues(res, cs));
      }),
      { numRuns: RUNS },
    );
  });

  it('matches across chunk boundaries with the destination the SQL would create', async () => {
    // 5000 rows span three DuckDB vectors (2048 rows each).
    const points: Point[] = Array.from({ length: 5000 }, (_, i) => ({
      l: i % 7 === 0 ? undefined : i * 1_000_003, f: i / 8, s: i % 5 === 0 ? `tab\there ${i}` : `host-${i % 100}-with-a-long-name`, b: i % 2 === 0, d: new Date(Date.UTC(2020, 0, 1) + i * 1000).toISOString(),
    } as Point));
    const res = await query(points, 'select * from src');
    const cs = compileSchema(validateSchema(res.fields));
    const out = viaVectors(res, cs);
    assert.deepEqual(out, viaValues(res, cs));
    assert.ok('text' in out && out.text.startsWith('5000:f=0\ts=tab\\there 0\tb=true\td=2020-01-01T00:00:00Z'), JSON.stringify(out).slice(0, 120));
  });

  it('refuses NULL in a required field and values in unknown columns, skips rows without values', async () => {
    const res = await query([{ l: 1 }, { s: 'x' }, {}], 'select l, s from src');
    const only = (fields: object[]) => viaVectors(res, compileSchema(validateSchema(fields as SchemaField[])));
    const refusal = (out: Outcome): string => ('code' in out ? `${out.code} ${out.message}` : `wrote ${out.text}`);
    assert.deepEqual(only([{ key: 'l', valtype: 'long' }, { key: 's', valtype: 'string' }]), { text: '2:l=1\ns=x' });
    assert.match(refusal(only([{ key: 'l', valtype: 'long', required: true }, { key: 's', valtype: 'string' }])), /^E18110 .*field "l": required field is missing$/);
    assert.match(refusal(only([{ key: 'l', valtype: 'long' }])), /^E18111 .*field "s": not in the repo schema$/);
    assert.match(refusal(only([{ key: 'l', valtype: 'long' }, { key: 's', valtype: 'long' }])), /^E18110 .*field "s": "x" is not a long$/);
  });
});
