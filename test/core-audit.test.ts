import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fresh, makeRepo, push, startServer, type TestServer } from './helpers.ts';

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
});
