import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { errorCode, fresh, makeRepo, push, startServer, type TestServer } from './helpers.ts';
import { REFERENCE_SCHEMA } from './fixtures/schemas.ts';



describe('repos', () => {
  let s: TestServer;
  before(async () => { s = await startServer(); });
  after(async () => { await s.close(); });

  const get = async (name: string) => JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${name}` })).body) as Record<string, any>;

  it('creates the reference\'s example repo and reads its schema back', async () => {
    const name = await makeRepo(s, fresh('Test_Repo'), REFERENCE_SCHEMA, { description: 'demo', options: { withIP: 'ip' } });
    const r = await get(name);
    assert.equal(r.region, 'nb');
    assert.equal(r.derivedFrom, '');
    assert.equal(r.schema.length, 4);
    assert.equal(r.schema[3].schema[1].key, 'salary');
    assert.equal(r.description, 'demo');
    const exists = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${name}/exists` })).body);
    assert.deepEqual(exists, { exist: true });
    assert.deepEqual(JSON.parse((await s.call({ method: 'GET', url: '/v2/repos/nope_nope/exists' })).body), { exist: false });
  });

  it('accepts fields the SDK sends beyond the reference and the boolean/jsonstring valtypes', async () => {
    const name = fresh('sdk');
    const res = await s.call({
      method: 'POST', url: `/v2/repos/${name}`,
      body: { region: 'nb', schema: [{ key: 'ok', valtype: 'boolean', description: 'flag' }, { key: 'raw', valtype: 'jsonstring' }], workflow: 'w', ruleNames: ['r'], unknownThing: { x: 1 } },
    });
    assert.equal(res.statusCode, 200, res.body);
  });

  it('answers each invalid repo with the reference\'s code and stores nothing', async () => {
    const cases: Array<[string, unknown, string]> = [
      ['9bad', { region: 'nb', schema: [{ key: 'a', valtype: 'long' }] }, 'E18103'],
      [fresh('r'), { region: 'nb', schema: [] }, 'E18105'],
      [fresh('r'), { region: 'nb' }, 'E18105'],
      [fresh('r'), { region: 'nb', schema: [{ key: '1a', valtype: 'long' }] }, 'E18106'],
      [fresh('r'), { region: 'nb', schema: [{ key: 'a', valtype: 'int128' }] }, 'E18107'],
      [fresh('r'), { region: 'nb', schema: [{ key: 'a', valtype: 'array', elemtype: 'map' }] }, 'E18107'],
      [fresh('r'), { region: 'nb', schema: [{ key: 'a', valtype: 'long' }, { key: 'a', valtype: 'string' }] }, 'E18104'],
      [fresh('r'), { region: 'nb', schema: [{ key: 'a', valtype: 'array' }] }, 'E18109'],
      [fresh('r'), { region: 'mars', schema: [{ key: 'a', valtype: 'long' }] }, 'E18212'],
      [fresh('r'), { region: 'nb', group: 'no_such_group', schema: [{ key: 'a', valtype: 'long' }] }, 'E18120'],
    ];
    for (const [name, body, code] of cases) {
      const res = await s.call({ method: 'POST', url: `/v2/repos/${name}`, body });
      assert.equal(errorCode(res), code, `${name} ${JSON.stringify(body)}: ${res.body}`);
      if (/^[a-z_]/i.test(name)) assert.equal((await s.call({ method: 'GET', url: `/v2/repos/${name}/exists` })).body, '{"exist":false}');
    }
  });

  it('limits nested map schemas to five levels below the top', async () => {
    const nest = (depth: number): any => (depth === 1 ? [{ key: 'leaf', valtype: 'long' }] : [{ key: `m${depth}`, valtype: 'map', schema: nest(depth - 1) }]);
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${fresh('deep')}`, body: { region: 'nb', schema: nest(6) } })).statusCode, 200);
    const res = await s.call({ method: 'POST', url: `/v2/repos/${fresh('deep')}`, body: { region: "nb", schema: nest(7) } });
    assert.equal(errorCode(res), 'E18109');
  });

  it('refuses a duplicate repo with 409 E18101 and answers 404 E18102 for a missing one', async () => {
    const name = await makeRepo(s);
    const dup = await s.call({ method: 'POST', url: `/v2/repos/${name}`, body: { region: 'nb', schema: [{ key: 'a', valtype: 'long' }] } });
    assert.equal(dup.statusCode, 409);
    assert.equal(errorCode(dup), 'E18101');
    for (const [method, url] of [['GET', '/v2/repos/no_such'], ['DELETE', '/v2/repos/no_such'], ['PUT', '/v2/repos/no_such']] as const) {
      const res = await s.call({ method, url, body: method === 'PUT' ? { schema: [{ key: 'a', valtype: 'long' }] } : undefined });
      assert.equal(res.statusCode, 404, url);
      assert.equal(errorCode(res), 'E18102');
    }
  });

  it('updates a schema by adding fields and relaxing required, and refuses removing or retyping', async () => {
    const name = await makeRepo(s, fresh('upd'), [{ key: 'a', valtype: 'long', required: true }, { key: 'b', valtype: 'string' }]);
    const put = (schema: unknown) => s.call({ method: 'PUT', url: `/v2/repos/${name}`, body: { schema } });
    assert.equal((await put([{ key: 'a', valtype: 'long', required: false }, { key: 'b', valtype: 'string' }, { key: 'c', valtype: 'float' }])).statusCode, 200);
    const r = await get(name);
    assert.deepEqual(r.schema.map((f: { key: string }) => f.key), ['a', 'b', 'c']);
    assert.equal(r.schema[0].required, false);
    assert.equal(errorCode(await put([{ key: 'a', valtype: 'long' }, { key: 'c', valtype: 'float' }])), 'E18128');
    assert.equal(errorCode(await put([{ key: 'a', valtype: 'string' }, { key: 'b', valtype: 'string' }, { key: 'c', valtype: 'float' }])), 'E18128');
    assert.deepEqual((await get(name)).schema.map((f: { valtype: string }) => f.valtype), ['long', 'string', 'float']);
    // Data pushed before an update stays readable after it.
    assert.equal((await push(s, name, 'a=1\tb=x')).statusCode, 200);
    assert.equal((await put([{ key: 'a', valtype: 'long' }, { key: 'b', valtype: 'string' }, { key: 'c', valtype: 'float' }, { key: 'd', valtype: 'date' }])).statusCode, 200);
    const sample = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${name}/data?count=1` })).body);
    assert.deepEqual(sample.records, [{ a: 1, b: 'x' }]);
  });

  it('lists repos, with lineage when asked withDag=true', async () => {
    const name = await makeRepo(s);
    const list = JSON.parse((await s.call({ method: 'GET', url: '/v2/repos' })).body) as { repos: Array<Record<string, any>> };
    const mine = list.repos.find((r) => r.name === name);
    assert.equal(mine?.region, 'nb');
    const dag = JSON.parse((await s.call({ method: 'GET', url: '/v2/repos?withDag=true' })).body) as { repos: Array<Record<string, any>> };
    assert.deepEqual(dag.repos.find((r) => r.name === name)?.dag, { upstream: null, transforms: [], exports: [] });
  });

  it('deletes a repo with its data: a new repo of the same name starts empty', async () => {
    const name = await makeRepo(s);
    assert.equal((await push(s, name, 'host=a')).statusCode, 200);
    assert.equal((await s.call({ method: 'DELETE', url: `/v2/repos/${name}` })).statusCode, 200);
    assert.equal((await s.call({ method: 'GET', url: `/v2/repos/${name}` })).statusCode, 404);
    await makeRepo(s, name);
    const sample = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${name}/data?count=10` })).body);
    assert.deepEqual(sample.records, []);
  });
});
