/**
 * rfc3339Ns keeps the last second's head and its value (src/exports/tsdb/line.ts):
 * a value parsed right after another must give what it gives parsed cold.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { rfc3339Ns } from '../src/exports/tsdb/line.ts';

const d2 = (lo: number, hi: number): fc.Arbitrary<string> => fc.integer({ min: lo, max: hi }).map((v) => String(v).padStart(2, '0'));
const stamp = fc.tuple(fc.integer({ min: 1600, max: 2300 }), d2(0, 13), d2(0, 32), fc.constantFrom('T', 't'), d2(0, 24), d2(0, 60), d2(0, 60),
  fc.option(fc.string({ unit: fc.constantFrom('0', '3', '9'), maxLength: 11 })), fc.constantFrom('Z', 'z', '+08:00', '-01:30', '+24:00', 'Q'))
  .map(([y, mo, d, t, h, mi, s, f, z]) => `${y}-${mo}-${d}${t}${h}:${mi}:${s}${f === null ? '' : '.' + f}${z}`);
/** Values sharing a head with the one before, as in a batch. */
const run = fc.array(fc.tuple(stamp, fc.boolean()), { minLength: 1, maxLength: 20 })
  .map((xs) => xs.map(([s, same], i) => (same && i > 0 ? xs[i - 1]![0].slice(0, 19) + s.slice(19) : s)));

describe('tsdb timestamps with the head of the last second kept', () => {
  it('parses every value as it does with nothing kept', () => {
    fc.assert(fc.property(run, (values) => {
      const warm = values.map((v) => rfc3339Ns(v));
      const cold = values.map((v) => {
        rfc3339Ns('1999-12-31T23:59:59Z'); // puts another head in the cache
        return rfc3339Ns(v);
      });
      assert.deepEqual(warm, cold);
    }), { numRuns: 500 });
    assert.equal(rfc3339Ns('2026-04-30T01:02:03.5Z'), '1777510923500000000');
    assert.equal(rfc3339Ns('2026-04-31T01:02:03.5Z'), undefined);
    assert.equal(rfc3339Ns('2026-04-30T01:02:03.5+01:00'), '1777507323500000000');
  });
});
