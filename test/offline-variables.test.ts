import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { expand, formatTime, variableValues } from '../src/offline/magic.ts';
import { AK2, errorCode, fresh, SK2 } from './helpers.ts';
import { jsonl, ok, putObject, startOffline, type OfflineServer } from './offline-helpers.ts';

describe('magic variables', () => {
  it('gives system variables at the batch time in the configured time zone', () => {
    const t = Date.parse('2026-12-31T23:59:58Z');
    const utc = variableValues(t, 'UTC', [], {});
    assert.equal(expand('$(year)/$(mon)/$(day) $(hour):$(min):$(sec) | $(date) | $(now)', utc), '2026/12/31 23:59:58 | 2026-12-31 | 2026-12-31 23:59:58');
    const sh = variableValues(t, 'Asia/Shanghai', [], {});
    assert.equal(expand('$(date) $(hour)', sh), '2027-01-01 07');
    assert.equal(expand('$yyyy-$mm-$dd', sh), '2027-01-01');
  });

  it('evaluates time user variables as an offset from the batch time in their format, and params over both', () => {
    const t = Date.parse('2026-03-01T02:00:00Z');
    const vars = variableValues(t, 'UTC', [
      { name: 'start', type: 'time', value: '$(now) - 5h', format: "yyyy-MM-dd'T'HH" },
      { name: 'tomorrow', type: 'time', value: '$(now)+1d', format: 'yyyyMMdd' },
      { name: 'c', type: 'string', value: 'const', format: '' },
    ], { c: 'param' });
    assert.equal(expand('$(start) $(tomorrow) $(c)', vars), '2026-02-28T21 20260302 param');
    assert.equal(formatTime(t, 'yy/MM/dd HH:mm:ss.SSS', 'UTC'), '26/03/01 02:00:00.000');
    assert.throws(() => expand('$(missing)', vars), /missing/);
  });
});

describe('variables API and account isolation', () => {
  let s: OfflineServer;
  before(async () => { s = await startOffline(); });
  after(() => s.close());

  it('creates, reads, lists, updates and deletes user variables with precise errors', async () => {
    const name = fresh('v');
    await ok(s, 'POST', `/v2/variables/${name}`, { name, type: 'time', value: '$(now)-5h', format: 'yyyy-MM-dd HH:mm:ss' });
    assert.deepEqual(await ok(s, 'GET', `/v2/variables/${name}`), { name, type: 'time', value: '$(now)-5h', format: 'yyyy-MM-dd HH:mm:ss' });
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/variables/${name}`, body: { type: 'string', value: 'x' } })), 'E18655');
    await ok(s, 'PUT', `/v2/variables/${name}`, { type: 'string', value: '2017-01-01' });
    assert.equal((await ok(s, 'GET', `/v2/variables/${name}`)).value, '2017-01-01');
    const user = await ok(s, 'GET', '/v2/variables?type=user');
    assert.deepEqual(user.variables.map((v: { name: string }) => v.name), [name]);
    const system = await ok(s, 'GET', '/v2/variables?type=system');
    assert.deepEqual(system.variables.map((v: { name: string }) => v.name), ['year', 'mon', 'day', 'hour', 'min', 'sec', 'date', 'now']);
    assert.equal(errorCode(await s.call({ method: 'POST', url: '/v2/variables/year', body: { type: 'string', value: 'x' } })), 'E18656');
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/variables/${fresh('v')}`, body: { type: 'time', value: 'yesterday', format: 'yyyy' } })), 'E18658');
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/variables/${fresh('v')}`, body: { type: 'time', value: '$(now)', format: 'yyyy-QQ' } })), 'E18658');
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/variables/${fresh('v')}`, body: { type: 'number', value: '1' } })), 'E18614');
    await ok(s, 'DELETE', `/v2/variables/${name}`);
    assert.equal(errorCode(await s.call({ method: 'GET', url: `/v2/variables/${name}` })), 'E18654');
  });

  it('keeps datasources, jobs, variables and runs of one account invisible to another', async () => {
    const b = fresh('bkt').replaceAll('_', '-');
    putObject(s, b, 'a.json', jsonl([{ a: 1 }]));
    const ds = fresh('ds');
    await ok(s, 'POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket: b, fileType: 'json' } });
    const job = fresh('job');
    await ok(s, 'POST', `/v2/jobs/${job}`, { srcs: [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: 'SELECT a FROM t' }, scheduler: { type: 'manual' } });
    const v = fresh('v');
    await ok(s, 'POST', `/v2/variables/${v}`, { type: 'string', value: 'x' });
    const bob = (method: string, url: string, body?: unknown) => s.call({ method, url, body, ak: AK2, sk: SK2 });
    assert.equal(errorCode(await bob('GET', `/v2/datasources/${ds}`)), 'E18602');
    assert.equal(errorCode(await bob('GET', `/v2/jobs/${job}`)), 'E18606');
    assert.equal(errorCode(await bob('GET', `/v2/variables/${v}`)), 'E18654');
    assert.equal(errorCode(await bob('GET', `/v2/jobs/${job}/history`)), 'E18606');
    assert.equal(errorCode(await bob('POST', '/v2/batch/actions/rerun', { jobName: job, runId: 1 })), 'E18606');
    assert.deepEqual(JSON.parse((await bob('GET', '/v2/jobs')).body).jobs, []);
    assert.deepEqual(JSON.parse((await bob('GET', '/v2/datasources')).body).datasources, []);
    // Bob's job of the same name reads nothing of Alice's.
    assert.equal(errorCode(await bob('POST', `/v2/jobs/${job}`, { srcs: [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: 'SELECT 1' }, scheduler: { type: 'manual' } })), 'E18612');
  });
});
