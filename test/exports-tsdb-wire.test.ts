/**
 * The tsdb encoder's fast path (stored wire line -> line protocol, no
 * decoding) must write exactly what the decode path writes, and leave every
 * record it is not sure about to the decode path (same rejections).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { encodeRecords, LineEncoder, type Verdicts } from '../src/exports/tsdb/encode.ts';
import { compileTsdbSpec } from '../src/exports/tsdb/spec.ts';
import { compileSchema } from '../src/ingest/compiled.ts';
import { decodeLine } from '../src/ingest/points.ts';
import { batchOf, repoRow, testConfig } from './sink-harness.ts';

const SCHEMA = [
  { key: 'host', valtype: 'string' },
  { key: 'n', valtype: 'long' },
  { key: 'x', valtype: 'float' },
  { key: 'ok', valtype: 'boolean' },
  { key: 's', valtype: 'string' },
  { key: 'at', valtype: 'date' },
  { key: 'ts', valtype: 'long' },
  { key: 'j', valtype: 'jsonstring' },
];
const repo = repoRow('src', SCHEMA);
const schema = compileSchema(repo.schema);
const config = testConfig({ tsdbUrl: 'http://127.0.0.1:8086' });

/** Each line the fast path writes for stored lines, one record at a time, and the verdicts. */
function viaStored(spec: Record<string, unknown>, lines: string[], from: number, times: number[]): Verdicts & { lines: string[] } {
  const plan = compileTsdbSpec({ destRepoName: 'db', series: 'm', ...spec }, repo.schema, config);
  const enc = new LineEncoder(plan);
  const out = { lines: [] as string[], rejected: [] as Verdicts['rejected'], skipped: 0 };
  for (let i = 0; i < lines.length; i++) {
    enc.encodeStored(lines, schema, from, times, i, i + 1, Infinity, out);
    if (enc.count > 0) out.lines.push(enc.take().toString('utf8'));
  }
  return out;
}

function viaPoints(spec: Record<string, unknown>, lines: string[], from: number, times: number[]): Verdicts & { lines: string[] } {
  const plan = compileTsdbSpec({ destRepoName: 'db', series: 'm', ...spec }, repo.schema, config);
  return encodeRecords(plan, lines.map((l) => decodeLine(l, schema)), from, times);
}

const text = fc.string({ unit: fc.constantFrom('a', 'Z', ' ', ',', '=', '"', '\\', '\t', '\n', 'é', '中', '🚀', '#', '0'), maxLength: 12 });
const date = fc.date({ min: new Date('1700-01-01T00:00:00Z'), max: new Date('2200-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString());
const point = fc.record({
  host: text,
  n: fc.oneof(fc.integer({ min: -1e15, max: 1e15 }), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })),
  x: fc.double({ noNaN: true, noDefaultInfinity: true }),
  ok: fc.boolean(),
  s: text,
  at: date,
  ts: fc.integer({ min: 0, max: 2e12 }),
  j: fc.constantFrom('{"a":1}', '[1,"x y"]', '{"k":"v,w=z"}'),
}, { requiredKeys: [] });

const SPECS: Array<Record<string, unknown>> = [
  { tags: { host: '#host' }, fields: { n: '#n', x: '#x', ok: '#ok', s: '#s', at: '#at', j: '#j' } },
  { tags: { host: '#host', n: '#n', ok: '#ok' }, fields: { x: '#x' }, timestamp: '#at' },
  { fields: { s: '#s', n: '#n' }, timestamp: '#ts', omitEmpty: true },
  { tags: { at: '#at' }, fields: { ok: '#ok' }, timestamp: '#ts', timestampUnit: 'ms' },
];

describe('tsdb fast path (wire lines straight to line protocol)', () => {
  test('writes exactly what the decode path writes, with the same rejections, for random records', () => {
    fc.assert(
      fc.property(fc.array(point, { maxLength: 8 }), fc.nat({ max: 5_000_000 }), fc.constantFrom(...SPECS), (points, from, spec) => {
        const b = batchOf(repo, points, from, points.map((_, i) => 1_795_996_800_000 + i));
        const lines = [...b.lines];
        const times = [...b.times];
        assert.deepEqual(viaStored(spec, lines, from, times), viaPoints(spec, lines, from, times));
      }),
      { numRuns: 400 },
    );
  });

  test('lines typed by hand with non-canonical numbers, bad timestamps or backslashes take the decode path', () => {
    const lines = [
      'host=a\tn=007\tx=1.50\tok=true',
      'host=b\tn=-0\tx=1e5\tok=false',
      'host=c\\tx\tn=1\tx=.5',
      'host=d\tx=2\tat=2026-02-30T00:00:00Z',
      'host=e',
      'host=f\tn=9223372036854775807\tx=-1.5E-3',
    ];
    const times = lines.map(() => 1_795_996_800_000);
    for (const spec of SPECS) {
      const fast = viaStored(spec, lines, 10, times);
      const slow = viaPoints(spec, lines, 10, times);
      assert.deepEqual(fast.rejected, slow.rejected);
      assert.equal(fast.lines.length, slow.lines.length);
    }
    // Raw float text goes out as stored (influxd parses it to the same double).
    assert.deepEqual(viaStored(SPECS[1]!, ['host=f\tn=9\tx=-1.5E-3\tat=2026-11-30T00:00:00Z'], 0, [0]).lines, ['m,host=f,n=9 x=-1.5E-3 1795996800000000000']);
    // A negative zero takes the decode path, which writes it as 0 (found by the property above).
    assert.deepEqual(viaStored(SPECS[0]!, ['host=z\tx=-0'], 0, [0]), viaPoints(SPECS[0]!, ['host=z\tx=-0'], 0, [0]));
  });
});
