import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { errorCode, fresh, makeRepo, push, startServer, type TestServer } from './helpers.ts';

describe('core API audit', () => {
  let s: TestServer;
  before(async () => { s = await startServer(); });
  after(async () => { await s.close(); });

  const rows = async (repo: string) => (JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${repo}/data?count=10` })).body) as { records: Array<Record<string, unknown>> }).records;

  it('a plugin string output of an array or map keeps longs beyond 2^53 as JSON numbers', async () => {
    const code = 'export default (p) => ({ arr: p.arr, m: p.m });';
    const up = await s.call({ method: 'POST', url: '/v2/plugins/com.audit.Pass', body: code, headers: { 'content-type': 'application/javascript' } });
    assert.equal(up.statusCode, 200, up.body);
    const src = await makeRepo(s, fresh('src'), [
      { key: 'arr', valtype: 'array', elemtype: 'long' },
      { key: 'm', valtype: 'map', schema: [{ key: 'x', valtype: 'long' }] },
    ]);
    const dest = fresh('dest');
    const res = await s.call({ method: 'POST', url: `/v2/repos/${src}/transforms/t/to/${dest}`, body: { plugin: { name: 'com.audit.Pass', output: [{ name: 'arr' }, { name: 'm' }] }, interval: '5s' } });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((await push(s, src, 'arr=[1,9007199254740993]\tm={"x":-9223372036854775808}\narr=[2]\tm={"x":3}')).statusCode, 200);
    await s.ctx.runner.runNow('alice', src, 't');
    assert.deepEqual(await rows(dest), [
      { arr: '[1,9007199254740993]', m: '{"x":-9223372036854775808}' },
      { arr: '[2]', m: '{"x":3}' },
    ]);
  });

  it('a transform created with whence "newest" (as the Go SDK may send) skips the points already in its source', async () => {
    const src = await makeRepo(s);
    assert.equal((await push(s, src, 'host=old1\nhost=old2')).statusCode, 200);
    const create = (name: string, dest: string, whence: unknown) =>
      s.call({ method: 'POST', url: `/v2/repos/${src}/transforms/${name}/to/${dest}`, body: { mode: 'sql', code: `select host from ${src}`, interval: '5s', whence } });
    const newest = fresh('newest');
    const oldest = fresh('oldest');
    assert.equal((await create('tn', newest, 'newest')).statusCode, 200);
    assert.equal((await create('to', oldest, 'oldest')).statusCode, 200);
    assert.equal(errorCode(await create('tx', fresh('x'), 'latest')), 'E18207');
    assert.equal((await s.call({ method: 'GET', url: `/v2/repos/${src}/transforms/tx/exists` })).body, '{"exist":false}');
    const got = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${src}/transforms/tn` })).body);
    assert.equal(got.spec.whence, 'newest');
    assert.deepEqual(got.status.lag, { points: 0, seconds: 0 });
    assert.equal((await push(s, src, 'host=new')).statusCode, 200);
    await s.ctx.runner.runNow('alice', src, 'tn');
    await s.ctx.runner.runNow('alice', src, 'to');
    assert.deepEqual(await rows(newest), [{ host: 'new' }]);
    assert.deepEqual(await rows(oldest), [{ host: 'old1' }, { host: 'old2' }, { host: 'new' }]);
  });

  it('refuses a transform that would close a cycle of repos (points would go round for ever)', async () => {
    const a = await makeRepo(s, fresh('a'), [{ key: 'x', valtype: 'string' }]);
    const b = await makeRepo(s, fresh('b'), [{ key: 'x', valtype: 'string' }]);
    const create = (src: string, name: string, dest: string) =>
      s.call({ method: 'POST', url: `/v2/repos/${src}/transforms/${name}/to/${dest}`, body: { mode: 'sql', code: `select x from ${src}`, interval: '5s' } });
    assert.equal((await push(s, a, 'x=1')).statusCode, 200);
    assert.equal((await create(a, 'ab', b)).statusCode, 200);
    const c = fresh('c');
    assert.equal((await create(b, 'bc', c)).statusCode, 200);
    // Back to the start, directly or over two hops: refused, nothing created.
    for (const [src, name] of [[b, 'ba'], [c, 'ca']] as const) {
      const res = await create(src, name, a);
      assert.equal(errorCode(res), 'E18204', res.body);
      assert.match(res.body, new RegExp(a));
      assert.equal((await s.call({ method: 'GET', url: `/v2/repos/${src}/transforms/${name}/exists` })).body, '{"exist":false}');
    }
    // Pushes into the first repo still work (it did not become a destination), and the point goes through once.
    assert.equal((await push(s, a, 'x=2')).statusCode, 200);
    await s.ctx.runner.runNow('alice', a, 'ab');
    await s.ctx.runner.runNow('alice', b, 'bc');
    assert.deepEqual(await rows(c), [{ x: '1' }, { x: '2' }]);
  });

  it('a SQL result of NaN or an infinity fails the run naming the value, not "null"', async () => {
    const src = await makeRepo(s, fresh('src'), [{ key: 'f', valtype: 'float' }]);
    const dest = fresh('dest');
    const res = await s.call({ method: 'POST', url: `/v2/repos/${src}/transforms/t/to/${dest}`, body: { mode: 'sql', code: `select f / f as ratio, 1 / f as inv from ${src}`, interval: '5s' } });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((await push(s, src, 'f=0')).statusCode, 200);
    await s.ctx.runner.runNow('alice', src, 't');
    const status = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${src}/transforms/t` })).body).status;
    assert.equal(status.state, 'error');
    assert.match(status.lastError, /field "ratio": "NaN" is not a float/);
    assert.deepEqual(await rows(dest), []);
  });

  it('a transform container may leave out type or count, as the reference allows', async () => {
    const src = await makeRepo(s);
    const create = (name: string, container: unknown) =>
      s.call({ method: 'POST', url: `/v2/repos/${src}/transforms/${name}/to/${fresh('dest')}`, body: { mode: 'sql', code: `select host from ${src}`, container } });
    const spec = async (name: string) => JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${src}/transforms/${name}` })).body).spec;
    assert.equal((await create('only_count', { count: 3 })).statusCode, 200);
    assert.deepEqual((await spec('only_count')).container, { type: 'M16C4', count: 3 });
    assert.equal((await create('only_type', { type: 'M32C8' })).statusCode, 200);
    assert.deepEqual((await spec('only_type')).container, { type: 'M32C8', count: 1 });
    const upd = await s.call({ method: 'PUT', url: `/v2/repos/${src}/transforms/only_type`, body: { container: { count: 2 } } });
    assert.equal(upd.statusCode, 200, upd.body);
    assert.deepEqual((await spec('only_type')).container, { type: 'M32C8', count: 2 }, 'an update keeps what it leaves out');
    // Given values are still checked.
    assert.equal(errorCode(await create('bad_type', { type: 'M64C16' })), 'E18213');
    assert.equal(errorCode(await create('bad_count', { count: 0 })), 'E18214');
  });

  it('refuses a schema update that would stall a SQL transform: a field differing from another only in case', async () => {
    const src = await makeRepo(s, fresh('src'), [{ key: 'a', valtype: 'string' }, { key: 'm', valtype: 'map', schema: [{ key: 'x', valtype: 'long' }] }]);
    const dest = fresh('dest');
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${src}/transforms/t/to/${dest}`, body: { mode: 'sql', code: `select a from ${src}`, interval: '5s' } })).statusCode, 200);
    assert.equal((await push(s, src, 'a=1')).statusCode, 200);
    const put = (schema: unknown) => s.call({ method: 'PUT', url: `/v2/repos/${src}`, body: { schema } });
    for (const schema of [
      [{ key: 'a', valtype: 'string' }, { key: 'm', valtype: 'map', schema: [{ key: 'x', valtype: 'long' }] }, { key: 'A', valtype: 'long' }],
      [{ key: 'a', valtype: 'string' }, { key: 'm', valtype: 'map', schema: [{ key: 'x', valtype: 'long' }, { key: 'X', valtype: 'string' }] }],
    ]) {
      const res = await put(schema);
      assert.equal(errorCode(res), 'E18128', res.body);
      assert.match(res.body, /only in case/);
    }
    assert.deepEqual(JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${src}` })).body).schema.map((f: any) => f.key), ['a', 'm']);
    // Other growth is fine, and the transform keeps running over old and new points.
    assert.equal((await put([{ key: 'a', valtype: 'string' }, { key: 'm', valtype: 'map', schema: [{ key: 'x', valtype: 'long' }] }, { key: 'b', valtype: 'long' }])).statusCode, 200);
    assert.equal((await push(s, src, 'a=2\tb=2')).statusCode, 200);
    await s.ctx.runner.runNow('alice', src, 't');
    assert.deepEqual(await rows(dest), [{ a: '1' }, { a: '2' }]);
    // A repo no SQL transform reads may hold such fields.
    const plain = await makeRepo(s, fresh('plain'), [{ key: 'a', valtype: 'string' }]);
    assert.equal((await s.call({ method: 'PUT', url: `/v2/repos/${plain}`, body: { schema: [{ key: 'a', valtype: 'string' }, { key: 'A', valtype: 'long' }] } })).statusCode, 200);
  });

  it('a SQL transform of a repo with a field named rowid reads every point once (the field hid the stage\'s row numbers)', async () => {
    // Small runs read part of a staged chunk, which is where the row numbers matter.
    const small = await startServer({ transformBatch: 2 });
    try {
      const src = await makeRepo(small, fresh('src'), [{ key: 'a', valtype: 'string' }, { key: 'RowId', valtype: 'long' }]);
      const dest = fresh('dest');
      const res = await small.call({ method: 'POST', url: `/v2/repos/${src}/transforms/t/to/${dest}`, body: { mode: 'sql', code: `select a, rowid from ${src}`, interval: '5s' } });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal((await push(small, src, 'a=1\tRowId=100\na=2\tRowId=100\na=3\tRowId=0\na=4\tRowId=1\na=5')).statusCode, 200);
      for (let i = 0; i < 4; i++) await small.ctx.runner.runNow('alice', src, 't');
      const read = JSON.parse((await small.call({ method: 'GET', url: `/v2/repos/${dest}/data?count=10` })).body).records;
      assert.deepEqual(read, [{ a: '1', RowId: 100 }, { a: '2', RowId: 100 }, { a: '3', RowId: 0 }, { a: '4', RowId: 1 }, { a: '5' }]);
    } finally {
      await small.close();
    }
  });
});
