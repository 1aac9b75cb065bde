/**
 * Specs stored as sent (exports, transforms, datasources, jobs, job exports,
 * variables, log repos) are bounded in depth and size: a 3,000-deep or
 * multi-MB body is refused with E18136 at create and update, nothing is
 * stored, and GET and list keep answering 200 afterwards.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { errorCode, fresh, makeRepo, type TestServer } from './helpers.ts';
import { startOffline } from './offline-helpers.ts';

/** `{"a":{"a":...}}` nested `n` deep. */
function deep(n: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = { a: v };
  return v;
}
const BIG = 'x'.repeat(1536 * 1024);

describe('stored spec limits', () => {
  let s: TestServer;
  before(async () => { s = await startOffline(); });
  after(async () => { await s.close(); });

  const call = (method: string, url: string, body?: unknown) => s.call({ method, url, body });
  async function status200(url: string): Promise<unknown> {
    const res = await call('GET', url);
    assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
    return JSON.parse(res.body);
  }
  /** Both hostile bodies are refused with E18136 by `method url`. */
  async function refused(method: string, url: string, body: (bad: unknown) => unknown): Promise<void> {
    assert.equal(errorCode(await call(method, url, body(deep(3000)))), 'E18136', `${method} ${url} deep`);
    assert.equal(errorCode(await call(method, url, body(BIG))), 'E18136', `${method} ${url} big`);
  }

  it('refuses a deep or huge export spec at create and update, stores nothing, and GET and list still answer', async () => {
    const repo = await makeRepo(s);
    const good = fresh('ex');
    const valid = { type: 'http', whence: 'newest', spec: { host: 'http://127.0.0.1:9', uri: '/in' } };
    assert.equal((await call('POST', `/v2/repos/${repo}/exports/${good}`, valid)).statusCode, 200);
    const bad = fresh('ex');
    await refused('POST', `/v2/repos/${repo}/exports/${bad}`, (x) => ({ ...valid, spec: { ...valid.spec, extra: x } }));
    await refused('PUT', `/v2/repos/${repo}/exports/${good}`, (x) => ({ ...valid, spec: { ...valid.spec, extra: x } }));
    await refused('POST', `/v2/repos/${repo}/exports/${good}/preview`, (x) => ({ ...valid, spec: { ...valid.spec, extra: x } }));
    assert.deepEqual(await status200(`/v2/repos/${repo}/exports/${bad}/exists`), { exist: false });
    assert.deepEqual(((await status200(`/v2/repos/${repo}/exports/${good}`)) as { spec: unknown }).spec, valid.spec);
    assert.deepEqual(((await status200(`/v2/repos/${repo}/exports`)) as { exports: Array<{ name: string }> }).exports.map((e) => e.name), [good]);
  });

  it('refuses a deep or huge transform spec at create and update and keeps the stored one', async () => {
    const src = await makeRepo(s);
    const good = fresh('tf');
    const valid = { mode: 'sql', code: `select host from ${src}`, interval: '5m' };
    const res = await call('POST', `/v2/repos/${src}/transforms/${good}/to/${fresh('dest')}`, valid);
    assert.equal(res.statusCode, 200, res.body);
    const bad = fresh('tf');
    await refused('POST', `/v2/repos/${src}/transforms/${bad}/to/${fresh('dest')}`, (x) => ({ ...valid, extra: x }));
    await refused('PUT', `/v2/repos/${src}/transforms/${good}`, (x) => ({ ...valid, extra: x }));
    assert.deepEqual(await status200(`/v2/repos/${src}/transforms/${bad}/exists`), { exist: false });
    assert.equal(((await status200(`/v2/repos/${src}/transforms/${good}`)) as { spec: { code: string } }).spec.code, valid.code);
    assert.equal(((await status200(`/v2/repos/${src}/transforms`)) as { transforms: unknown[] }).transforms.length, 1);
  });

  it('refuses deep or huge datasource, job, job export and schema bodies, stores nothing, and the lists answer', async () => {
    const ds = fresh('ds');
    await refused('POST', `/v2/datasources/${ds}`, (x) => ({ type: 'kodo', spec: { bucket: 'b', fileType: 'json', extra: x } }));
    await refused('PUT', `/v2/datasources/${ds}`, (x) => ({ type: 'kodo', spec: { bucket: 'b', fileType: 'json', extra: x } }));
    await refused('POST', '/v2/schemas', (x) => ({ type: 'kodo', spec: { bucket: 'b', extra: x } }));
    const job = fresh('job');
    const jobBody = (x: unknown) => ({ srcs: [{ name: ds, type: 'DataSource', tableName: 'logs' }], computation: { code: 'SELECT 1', type: 'SQL' }, scheduler: { type: 'manual' }, extra: x });
    await refused('POST', `/v2/jobs/${job}`, jobBody);
    await refused('PUT', `/v2/jobs/${job}`, jobBody);
    await refused('POST', `/v2/jobs/${job}/actions/start`, (x) => ({ params: [{ name: 'a', default: x }] }));
    const exp = fresh('exp');
    await refused('POST', `/v2/jobs/${job}/exports/${exp}`, (x) => ({ type: 'kodo', spec: { bucket: 'b', keyPrefix: 'p/', extra: x } }));
    await refused('PUT', `/v2/jobs/${job}/exports/${exp}`, (x) => ({ type: 'kodo', spec: { bucket: 'b', keyPrefix: 'p/', extra: x } }));
    assert.deepEqual(await status200(`/v2/datasources/${ds}/exists`), { exist: false });
    assert.deepEqual(await status200(`/v2/jobs/${job}/exists`), { exist: false });
    assert.deepEqual(((await status200('/v2/datasources')) as { datasources: unknown[] }).datasources, []);
    assert.deepEqual(((await status200('/v2/jobs')) as { jobs: unknown[] }).jobs, []);
  });

  it('refuses a deep or huge variable at create and update and keeps the stored one', async () => {
    const good = fresh('v');
    assert.equal((await call('POST', `/v2/variables/${good}`, { type: 'string', value: 'keep' })).statusCode, 200);
    const bad = fresh('v');
    await refused('POST', `/v2/variables/${bad}`, (x) => ({ type: 'string', value: 'x', extra: x }));
    await refused('PUT', `/v2/variables/${good}`, (x) => ({ type: 'string', value: 'y', extra: x }));
    assert.equal(errorCode(await call('GET', `/v2/variables/${bad}`)), 'E18654');
    assert.equal(((await status200(`/v2/variables/${good}`)) as { value: string }).value, 'keep');
    const list = (await status200('/v2/variables?type=user')) as { variables: Array<{ name: string }> };
    assert.deepEqual(list.variables.map((v) => v.name), [good]);
  });

  it('refuses a deep or huge log repo body at create and update and keeps the stored one', async () => {
    const good = fresh('log');
    const valid = { region: 'nb', retention: '2d', schema: [{ key: 'msg', valtype: 'string' }] };
    const res = await call('POST', `/v5/repos/${good}`, valid);
    assert.equal(res.statusCode, 200, res.body);
    const bad = fresh('log');
    await refused('POST', `/v5/repos/${bad}`, (x) => ({ ...valid, description: x }));
    await refused('PUT', `/v5/repos/${good}`, (x) => ({ ...valid, description: x }));
    assert.equal((await call('GET', `/v5/repos/${bad}`)).statusCode, 404);
    assert.equal(((await status200(`/v5/repos/${good}`)) as { retention: string }).retention, '2d');
    const list = (await status200('/v5/repos')) as { repos: Array<{ name: string }> };
    assert.deepEqual(list.repos.map((r) => r.name), [good]);
  });
});
