import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { errorCode, fresh, makeRepo, startServer, type TestServer } from './helpers.ts';

describe('resource groups', () => {
  let s: TestServer;
  before(async () => { s = await startServer(); });
  after(async () => { await s.close(); });

  const create = (name: string, body: unknown) => s.call({ method: 'POST', url: `/v2/groups/${name}`, body });
  const get = async (name: string) => JSON.parse((await s.call({ method: 'GET', url: `/v2/groups/${name}` })).body) as Record<string, any>;

  it('creates a group that reads back with its container, status and times', async () => {
    const name = fresh('g');
    const res = await create(name, { region: 'nb', container: { type: 'M16C4', count: 5 }, allocateOnStart: true });
    assert.equal(res.statusCode, 200);
    const g = await get(name);
    assert.equal(g.region, 'nb');
    assert.deepEqual(g.container, { type: 'M16C4', count: 5, status: 'running' });
    assert.ok(Date.parse(g.createTime) > 0 && Date.parse(g.updateTime) > 0);
    assert.equal(g.slots, 5);
  });

  it('leaves a group idle until started when allocateOnStart is false, and start/stop switch it', async () => {
    const name = fresh('g');
    assert.equal((await create(name, { region: 'nb', container: { type: 'M32C8', count: 2 } })).statusCode, 200);
    assert.equal((await get(name)).container.status, 'idle');
    assert.equal((await s.call({ method: 'POST', url: `/v2/groups/${name}/actions/start` })).statusCode, 200);
    assert.equal((await get(name)).container.status, 'running');
    assert.equal((await s.call({ method: 'POST', url: `/v2/groups/${name}/actions/stop` })).statusCode, 200);
    assert.equal((await get(name)).container.status, 'idle');
  });

  it('updates the container and lists groups', async () => {
    const name = fresh('g');
    await create(name, { region: 'nb', container: { type: 'M16C4', count: 1 } });
    assert.equal((await s.call({ method: 'PUT', url: `/v2/groups/${name}`, body: { container: { type: 'M32C8', count: 3 } } })).statusCode, 200);
    const g = await get(name);
    assert.equal(g.container.type, 'M32C8');
    assert.equal(g.container.count, 3);
    const list = JSON.parse((await s.call({ method: 'GET', url: '/v2/groups' })).body) as { groups: Array<{ name: string; container: { count: number } }> };
    assert.equal(list.groups.find((x) => x.name === name)?.container.count, 3);
  });

  it('answers each invalid create with the reference\'s code and stores nothing', async () => {
    const cases: Array<[string, unknown, number, string]> = [
      ['1bad', { region: 'nb', container: { type: 'M16C4', count: 1 } }, 400, 'E18221'],
      [fresh('g'), { region: 'mars', container: { type: 'M16C4', count: 1 } }, 400, 'E18212'],
      [fresh('g'), { region: 'nb', container: { type: 'M99', count: 1 } }, 400, 'E18213'],
      [fresh('g'), { region: 'nb', container: { type: 'M16C4', count: 0 } }, 400, 'E18214'],
      [fresh('g'), { region: 'nb', container: { type: 'M16C4', count: 129 } }, 400, 'E18214'],
      [fresh('g'), { region: 'nb' }, 400, 'E18213'],
    ];
    for (const [name, body, status, code] of cases) {
      const res = await create(name, body);
      assert.equal(res.statusCode, status, `${name} ${JSON.stringify(body)}: ${res.body}`);
      assert.equal(errorCode(res), code);
      if (/^[a-z_]/.test(name)) assert.equal((await s.call({ method: 'GET', url: `/v2/groups/${name}` })).statusCode, 404);
    }
    const bad = await s.call({ method: 'POST', url: `/v2/groups/${fresh('g')}`, body: '{not json', headers: { 'content-type': 'application/json' } });
    assert.equal(errorCode(bad), 'E18007');
  });

  it('refuses a duplicate group with E18218 and a missing one with E18120', async () => {
    const name = fresh('g');
    await create(name, { region: 'nb', container: { type: 'M16C4', count: 1 } });
    const dup = await create(name, { region: 'nb', container: { type: 'M16C4', count: 1 } });
    assert.equal(dup.statusCode, 409);
    assert.equal(errorCode(dup), 'E18218');
    for (const [method, url] of [['GET', '/v2/groups/nope_x'], ['DELETE', '/v2/groups/nope_x'], ['POST', '/v2/groups/nope_x/actions/start']] as const) {
      const res = await s.call({ method, url });
      assert.equal(res.statusCode, 404);
      assert.equal(errorCode(res), 'E18120');
    }
  });

  it('refuses to delete a group a repo uses (E18215) and deletes it once free', async () => {
    const name = fresh('g');
    await create(name, { region: 'nb', container: { type: 'M16C4', count: 1 } });
    const repo = await makeRepo(s, fresh('repo'), [{ key: 'a', valtype: 'long' }], { group: name });
    const res = await s.call({ method: 'DELETE', url: `/v2/groups/${name}` });
    assert.equal(res.statusCode, 409);
    assert.equal(errorCode(res), 'E18215');
    assert.equal((await s.call({ method: 'DELETE', url: `/v2/repos/${repo}` })).statusCode, 200);
    assert.equal((await s.call({ method: 'DELETE', url: `/v2/groups/${name}` })).statusCode, 200);
    assert.equal((await s.call({ method: 'GET', url: `/v2/groups/${name}` })).statusCode, 404);
  });
});
