/**
 * SQL checks in child processes (src/sql/check-pool.ts): refusals for
 * queries too big or too slow to check, and the pool carrying on afterwards.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApiError } from '../src/errors.ts';
import type { SchemaField } from '../src/ingest/types.ts';
import { SqlEngine } from '../src/sql/engine.ts';

const schema: SchemaField[] = [{ key: 'host', valtype: 'string', required: false }, { key: 'n', valtype: 'long', required: false }];

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ApiError, String(err));
    assert.equal(err.code, 'E18209');
    return err.message;
  }
  assert.fail('the query was accepted');
}

describe('SQL checks in child processes', () => {
  let engine: SqlEngine;
  before(async () => { engine = await SqlEngine.create({ memoryLimit: '1GB', threads: 1 }); });
  after(async () => { await engine.close(); });

  it('describes a valid query with the fields a transform would get', async () => {
    const fields = await engine.describe('src', schema, 'select host, n * 2 as twice, count(*) over () as total from src');
    assert.deepEqual(fields.map((f) => [f.key, f.valtype]), [['host', 'string'], ['twice', 'long'], ['total', 'long']]);
  });

  it('refuses a constant too big for the check\'s memory, in well under its time budget', async () => {
    const t0 = performance.now();
    const msg = await refusal(engine.describe('src', schema, "select repeat('x', 1000000000) as a from src", { timeoutMs: 10_000 }));
    assert.match(msg, /needs more memory than a check may use \(256MB\)/);
    assert.ok(performance.now() - t0 < 8_000);
  });

  it('refuses a query whose one-row trial overruns the budget, then checks the next query normally', async () => {
    const t0 = performance.now();
    const msg = await refusal(engine.describe('src', schema, 'select count(*) as c from src, range(100000000000)', { timeoutMs: 500 }));
    assert.match(msg, /took more than 500 ms/);
    assert.ok(performance.now() - t0 < 5_000, `refused after ${performance.now() - t0} ms`);
    assert.deepEqual((await engine.describe('src', schema, 'select n from src')).map((f) => f.key), ['n']);
  });

  it('passes queries whose trial fails only for want of data, and keeps parse errors precise', async () => {
    // The NULL trial row makes this cast fail at run time; real data decides, not the check.
    assert.deepEqual((await engine.describe('src', schema, "select cast(coalesce(host, 'x') as int) as v from src")).map((f) => f.key), ['v']);
    assert.match(await refusal(engine.describe('src', schema, 'selec host from src')), /syntax error at or near "selec"/);
    assert.match(await refusal(engine.describe('src', schema, 'select * from other_table')), /other_table/);
  });

  it('answers more checks than it has processes, in any order', async () => {
    const qs = Array.from({ length: 7 }, (_, i) => `select n + ${i} as v${i} from src`);
    const got = await Promise.all(qs.map((q) => engine.describe('src', schema, q)));
    assert.deepEqual(got.map((f) => f[0]!.key), qs.map((_q, i) => `v${i}`));
  });
});
