/**
 * Staged transform sources (decision 007): points pushed into a repo that SQL
 * transforms read are decoded into DuckDB ahead of the runs. These tests
 * check what a user would notice: the output is the same whether the stage
 * was filled ahead, filled by the run itself, reset by a schema change or a
 * late transform, and one account's SQL never sees another's staged data.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { AK2, SK2, errorCode, fresh, makeRepo, push, startServer, type TestServer } from './helpers.ts';

/** `n` points host=h<i % hosts>, latency=i starting at `from`. */
const lines = (from: number, n: number, hosts = 3): string =>
  Array.from({ length: n }, (_, k) => `host=h${(from + k) % hosts}\tlatency=${from + k}`).join('\n');

async function until<T>(what: string, fn: () => T | undefined | null | false, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('staged transform sources', () => {
  let s: TestServer;
  before(async () => { s = await startServer(); });
  after(async () => { await s.close(); });

  const create = (repo: string, name: string, dest: string, code: string, auth: { ak?: string; sk?: string } = {}) =>
    s.call({ method: 'POST', url: `/v2/repos/${repo}/transforms/${name}/to/${dest}`, body: { mode: 'sql', code, interval: '10m' }, ...auth });
  /** The newest points over HTTP (the API returns at most 10). */
  const rows = async (repo: string, auth: { ak?: string; sk?: string } = {}) =>
    (JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${repo}/data?count=10`, ...auth })).body) as { records: Array<Record<string, unknown>> }).records;
  /** Every point of a repo, read through the repo service. */
  const all = async (repo: string) => (await s.ctx.repos.sample('alice', repo, 1_000_000)) as Array<Record<string, unknown>>;
  const status = async (repo: string, name: string) =>
    (JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${repo}/transforms/${name}` })).body) as { status: Record<string, any> }).status;

  it('stages pushed points before any run, and the run reads them from the stage', async () => {
    const src = await makeRepo(s);
    const dest = fresh('d');
    assert.equal((await create(src, 'sum', dest, `select host, count(*) as n, sum(latency) as total from ${src} group by host order by host`)).statusCode, 200);
    assert.equal(s.ctx.stages.staged('alice', src), null, 'nothing staged before data arrives');
    for (let i = 0; i < 5; i++) assert.equal((await push(s, src, lines(i * 200, 200))).statusCode, 200);
    const st = await until('the feeder to stage 1000 points', () => {
      const x = s.ctx.stages.staged('alice', src);
      return x && x.end === 1000 ? x : null;
    });
    assert.equal(st.start, 0);
    await s.ctx.runner.runNow('alice', src, 'sum');
    // sum of i for i ≡ h (mod 3), 0 <= i < 1000
    const expect = [0, 1, 2].map((h) => {
      let n = 0;
      let total = 0;
      for (let i = h; i < 1000; i += 3) { n++; total += i; }
      return { host: `h${h}`, n, total };
    });
    assert.deepEqual(await rows(dest), expect);
    const t = await status(src, 'sum');
    assert.deepEqual(t.total, { in: 1000, out: 3 });
    assert.deepEqual(t.lag, { points: 0, seconds: 0 });
    // The run reports where its time went.
    assert.deepEqual(Object.keys(t.lastRun.steps).sort(), ['compute', 'encode', 'write']);
    for (const v of Object.values(t.lastRun.steps as Record<string, number>)) assert.ok(Number.isFinite(v) && v >= 0, JSON.stringify(t.lastRun));
  });

  it('stores no point for result rows whose every column is NULL', async () => {
    const src = await makeRepo(s);
    const dest = fresh('d');
    const sql = `select case when latency % 2 = 0 then latency end as even from ${src}`;
    assert.equal((await create(src, 'evens', dest, sql)).statusCode, 200);
    await push(s, src, lines(0, 10));
    await s.ctx.runner.runNow('alice', src, 'evens');
    assert.deepEqual((await all(dest)).map((r) => r.even), [0, 2, 4, 6, 8]);
    assert.deepEqual((await status(src, 'evens')).total, { in: 10, out: 5 });
  });

  it('gives every transform of a source exactly its own range, also one created later', async () => {
    const src = await makeRepo(s);
    const early = fresh('early');
    const late = fresh('late');
    assert.equal((await create(src, 'early', early, `select latency from ${src}`)).statusCode, 200);
    await push(s, src, lines(0, 30));
    await s.ctx.runner.runNow('alice', src, 'early');
    await push(s, src, lines(30, 20));
    // A new transform starts at the oldest retained point, below what the stage holds now.
    assert.equal((await create(src, 'late', late, `select latency from ${src}`)).statusCode, 200);
    await push(s, src, lines(50, 10));
    await s.ctx.runner.runNow('alice', src, 'late');
    await s.ctx.runner.runNow('alice', src, 'early');
    const got = async (r: string) => (await all(r)).map((x) => x.latency as number).sort((a, b) => a - b);
    assert.deepEqual(await got(early), Array.from({ length: 60 }, (_, i) => i));
    assert.deepEqual(await got(late), Array.from({ length: 60 }, (_, i) => i));
    // Both are caught up, so nothing they consumed stays staged.
    const st = s.ctx.stages.staged('alice', src);
    assert.ok(st === null || st.end === st.start, `stage ${JSON.stringify(st)}`);
  });

  it('restages after the source schema grows, and the new field reaches the SQL', async () => {
    const src = await makeRepo(s);
    const dest = fresh('d');
    assert.equal((await create(src, 'c', dest, `select count(*) as n, sum(latency) as total from ${src}`)).statusCode, 200);
    await push(s, src, lines(0, 10));
    await until('staging', () => s.ctx.stages.staged('alice', src)?.end === 10);
    const repo = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${src}` })).body) as { schema: unknown[] };
    const grown = [...repo.schema, { key: 'zone', valtype: 'string' }];
    assert.equal((await s.call({ method: 'PUT', url: `/v2/repos/${src}`, body: { schema: grown } })).statusCode, 200);
    await push(s, src, 'host=a\tlatency=100\tzone=z1');
    await s.ctx.runner.runNow('alice', src, 'c');
    assert.deepEqual(await rows(dest), [{ n: 11, total: 145 }]);
    // A transform created now can use the new field; its range restages with the grown schema.
    const z = fresh('z');
    assert.equal((await create(src, 'zones', z, `select zone, count(*) as n from ${src} where zone is not null group by zone`)).statusCode, 200);
    await s.ctx.runner.runNow('alice', src, 'zones');
    assert.deepEqual(await rows(z), [{ zone: 'z1', n: 1 }]);
  });

  it('frees the stage when the last SQL transform of a source is deleted', async () => {
    const src = await makeRepo(s);
    assert.equal((await create(src, 'gone', fresh('d'), `select latency from ${src}`)).statusCode, 200);
    await push(s, src, lines(0, 10));
    await until('staging', () => s.ctx.stages.staged('alice', src)?.end === 10);
    assert.equal((await s.call({ method: 'DELETE', url: `/v2/repos/${src}/transforms/gone` })).statusCode, 200);
    await until('the stage to go', () => s.ctx.stages.staged('alice', src) === null);
    // Pushing now stages nothing: no SQL transform reads the repo.
    await push(s, src, lines(10, 10));
    await sleep(50);
    assert.equal(s.ctx.stages.staged('alice', src), null);
  });

  it('never shows one account\'s staged data to another account\'s SQL', async () => {
    const mine = await makeRepo(s, fresh('secret'));
    assert.equal((await create(mine, 'keep', fresh('d'), `select latency from ${mine}`)).statusCode, 200);
    await push(s, mine, lines(0, 10));
    await until('staging', () => s.ctx.stages.staged('alice', mine)?.end === 10);
    const bob = { ak: AK2, sk: SK2 };
    const theirs = fresh('theirs');
    const res = await s.call({ method: 'POST', url: `/v2/repos/${theirs}`, body: { region: 'nb', schema: [{ key: 'latency', valtype: 'long' }] }, ...bob });
    assert.equal(res.statusCode, 200, res.body);
    // Staged chunk tables and other repos do not exist for bob's SQL, whatever the name.
    for (const sql of [`select * from "$stage_0"`, `select * from ${mine}`, 'select * from temp.main."$stage_0"']) {
      const r = await create(theirs, 'peek', fresh('d'), sql, bob);
      assert.equal(r.statusCode, 400, `${sql}: ${r.body}`);
      assert.equal(errorCode(r), 'E18209');
    }
    // A transform bob may create sees only his own source.
    const out = fresh('cnt');
    assert.equal((await create(theirs, 'cnt', out, `select count(*) as n from ${theirs}`, bob)).statusCode, 200);
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${theirs}/data`, body: 'latency=1\nlatency=2', headers: { 'content-type': 'text/plain' }, ...bob })).statusCode, 200);
    await s.ctx.runner.runNow('bob', theirs, 'cnt');
    assert.deepEqual(await rows(out, bob), [{ n: 2 }]);
  });
});

describe('staged transform sources with staging ahead off', () => {
  let s: TestServer;
  before(async () => { s = await startServer({ transformStage: 0 }); });
  after(async () => { await s.close(); });

  it('stages inside the run and gives the same output', async () => {
    const src = await makeRepo(s);
    const dest = fresh('d');
    const res = await s.call({ method: 'POST', url: `/v2/repos/${src}/transforms/t/to/${dest}`, body: { mode: 'sql', code: `select count(*) as n, max(latency) as top from ${src}`, interval: '10m' } });
    assert.equal(res.statusCode, 200, res.body);
    await push(s, src, lines(0, 500));
    await sleep(50);
    assert.equal(s.ctx.stages.staged('alice', src), null, 'nothing staged ahead with PIPELINE_TRANSFORM_STAGE=0');
    await s.ctx.runner.runNow('alice', src, 't');
    const out = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${dest}/data?count=5` })).body) as { records: unknown[] };
    assert.deepEqual(out.records, [{ n: 500, top: 499 }]);
  });
});
