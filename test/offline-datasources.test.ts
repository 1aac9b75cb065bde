import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AK, AK2, errorCode, fresh, SK, SK2, startServer, type TestServer } from './helpers.ts';
import { jsonl, putHdfs, putObject, writeParquet } from './offline-helpers.ts';

describe('offline datasources and schema inference', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({
      accounts: [
        { id: 'alice', accessKey: AK, secretKey: SK },
        { id: 'bob', accessKey: AK2, secretKey: SK2, buckets: ['bobs-bucket'], hdfsPaths: ['bob'] },
      ],
    });
  });
  after(() => s.close());

  const bucket = (): string => fresh('bkt').replaceAll('_', '-');

  it('infers the narrowest type per json column, also from gzip files, and stores the datasource', async () => {
    const b = bucket();
    putObject(s, b, 'logs/2026-01-01.json', jsonl([{ host: 'a', n: 1, f: 1, ok: true, t: '2026-01-01T00:00:00Z' }, { host: 'b', n: 2, f: 2.5, ok: false, t: '2026-01-01T01:00:00Z' }]));
    putObject(s, b, 'logs/2026-01-02.json.gz', jsonl([{ host: 'c', n: 3, f: 3, ok: true, t: '2026-01-02T00:00:00Z' }]), true);
    const inferred = await s.call({ method: 'POST', url: '/v2/schemas', body: { type: 'kodo', spec: { bucket: b, keyPrefixes: ['logs/'], fileType: 'json' } } });
    assert.equal(inferred.statusCode, 200, inferred.body);
    assert.deepEqual(JSON.parse(inferred.body).schema.map((f: { key: string; valtype: string }) => `${f.key}:${f.valtype}`), ['host:string', 'n:long', 'f:float', 'ok:boolean', 't:date']);

    const name = fresh('ds');
    const res = await s.call({ method: 'POST', url: `/v2/datasources/${name}`, body: { region: 'nb', type: 'kodo', spec: { bucket: b, keyPrefix: ['logs/'], fileType: 'json' } } });
    assert.equal(res.statusCode, 200, res.body);
    const got = JSON.parse((await s.call({ method: 'GET', url: `/v2/datasources/${name}` })).body);
    assert.equal(got.type, 'kodo');
    assert.deepEqual(got.spec.keyPrefixes, ['logs/']);
    assert.deepEqual(got.spec.keyPrefix, ['logs/']);
    assert.equal(got.schema.length, 5);
    const list = JSON.parse((await s.call({ method: 'GET', url: '/v2/datasources' })).body);
    assert.ok(list.datasources.some((d: { name: string }) => d.name === name));
    assert.deepEqual(JSON.parse((await s.call({ method: 'GET', url: `/v2/datasources/${name}/exists` })).body), { exist: true });
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/datasources/${name}`, body: { type: 'kodo', spec: { bucket: b, keyPrefixes: ['logs/'], fileType: 'json' } } })), 'E18601');
    assert.equal((await s.call({ method: 'DELETE', url: `/v2/datasources/${name}` })).statusCode, 200);
    assert.deepEqual(JSON.parse((await s.call({ method: 'GET', url: `/v2/datasources/${name}/exists` })).body), { exist: false });
    assert.equal(errorCode(await s.call({ method: 'GET', url: `/v2/datasources/${name}` })), 'E18602');
  });

  it('infers csv (with header and delimiter), parquet and text schemas', async () => {
    const b = bucket();
    putObject(s, b, 'c/a.csv', 'id|name|score\n1|x|1.5\n2|y|2\n');
    await writeParquet(path.join(s.config.bucketsDir, b, 'p/a.parquet'), "SELECT 1::BIGINT AS id, 'x' AS name, TIMESTAMP '2026-01-01 00:00:00' AS ts");
    putObject(s, b, 't/a.log', 'hello world\nsecond line\n');
    const infer = async (spec: object) => JSON.parse((await s.call({ method: 'POST', url: '/v2/schemas', body: { type: 'kodo', spec: { bucket: b, ...spec } } })).body).schema;
    assert.deepEqual(await infer({ keyPrefixes: ['c/'], fileType: 'csv', delimiter: '|', containsHeader: true }), [
      { key: 'id', valtype: 'long', required: false }, { key: 'name', valtype: 'string', required: false }, { key: 'score', valtype: 'float', required: false },
    ]);
    assert.deepEqual((await infer({ keyPrefixes: ['p/'], fileType: 'parquet' })).map((f: { valtype: string }) => f.valtype), ['long', 'string', 'date']);
    assert.deepEqual(await infer({ keyPrefixes: ['t/'], fileType: 'text' }), [{ key: 'text', valtype: 'string', required: false }]);
  });

  it('answers E18620 when nothing matches and E18623 when the files are not of the file type', async () => {
    const b = bucket();
    putObject(s, b, 'bad/x.json', 'this is not json\n');
    assert.equal(errorCode(await s.call({ method: 'POST', url: '/v2/schemas', body: { type: 'kodo', spec: { bucket: b, keyPrefixes: ['nothing/'], fileType: 'json' } } })), 'E18620');
    assert.equal(errorCode(await s.call({ method: 'POST', url: '/v2/schemas', body: { type: 'kodo', spec: { bucket: b, keyPrefixes: ['bad/'], fileType: 'json' } } })), 'E18623');
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/datasources/${fresh('ds')}`, body: { type: 'kodo', spec: { bucket: b, keyPrefixes: ['nothing/'], fileType: 'json' } } })), 'E18620');
    assert.equal(errorCode(await s.call({ method: 'POST', url: '/v2/schemas', body: { type: 'kodo', spec: { bucket: 'no-such-bucket', keyPrefixes: [''], fileType: 'json' } } })), 'E18619');
  });

  it('checks a given schema against the files unless noVerifySchema is set', async () => {
    const b = bucket();
    putObject(s, b, 'x/a.json', jsonl([{ a: 1, s: 'x' }]));
    const spec = { bucket: b, keyPrefixes: ['x/'], fileType: 'json' };
    const missing = await s.call({ method: 'POST', url: `/v2/datasources/${fresh('ds')}`, body: { type: 'kodo', spec, schema: [{ key: 'zz', valtype: 'string' }] } });
    assert.equal(errorCode(missing), 'E18615');
    assert.match(missing.body, /zz/);
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/datasources/${fresh('ds')}`, body: { type: 'kodo', spec, schema: [{ key: 's', valtype: 'long' }] } })), 'E18615');
    const ok = await s.call({ method: 'POST', url: `/v2/datasources/${fresh('ds')}`, body: { type: 'kodo', spec, schema: [{ key: 'a', valtype: 'float' }] } });
    assert.equal(ok.statusCode, 200, ok.body);
    const trusted = await s.call({ method: 'POST', url: `/v2/datasources/${fresh('ds')}`, body: { type: 'kodo', spec: { ...spec, keyPrefixes: ['later/'] }, noVerifySchema: true, schema: [{ key: 'zz', valtype: 'string' }] } });
    assert.equal(trusted.statusCode, 200, trusted.body);
  });

  it('lets PUT add fields but not remove or retype them', async () => {
    const b = bucket();
    putObject(s, b, 'x/a.json', jsonl([{ a: 1, s: 'x', extra: 2 }]));
    const name = fresh('ds');
    const spec = { bucket: b, keyPrefixes: ['x/'], fileType: 'json' };
    assert.equal((await s.call({ method: 'POST', url: `/v2/datasources/${name}`, body: { type: 'kodo', spec, schema: [{ key: 'a', valtype: 'long' }] } })).statusCode, 200);
    const grow = await s.call({ method: 'PUT', url: `/v2/datasources/${name}`, body: { spec, schema: [{ key: 'a', valtype: 'long' }, { key: 'extra', valtype: 'long' }] } });
    assert.equal(grow.statusCode, 200, grow.body);
    assert.equal(JSON.parse((await s.call({ method: 'GET', url: `/v2/datasources/${name}` })).body).schema.length, 2);
    assert.equal(errorCode(await s.call({ method: 'PUT', url: `/v2/datasources/${name}`, body: { spec, schema: [{ key: 'extra', valtype: 'long' }] } })), 'E18615');
    assert.equal(errorCode(await s.call({ method: 'PUT', url: `/v2/datasources/${name}`, body: { spec, schema: [{ key: 'a', valtype: 'string' }, { key: 'extra', valtype: 'long' }] } })), 'E18615');
  });

  it('refuses names, types and paths that are invalid or leave their root', async () => {
    const b = bucket();
    putObject(s, b, 'x/a.json', jsonl([{ a: 1 }]));
    assert.equal(errorCode(await s.call({ method: 'POST', url: '/v2/datasources/1bad', body: { type: 'kodo', spec: { bucket: b, fileType: 'json' } } })), 'E18600');
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/datasources/${fresh('ds')}`, body: { type: 'ftp', spec: { bucket: b, fileType: 'json' } } })), 'E18614');
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/datasources/${fresh('ds')}`, body: { type: 'kodo', spec: { bucket: b, fileType: 'xml' } } })), 'E18614');
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/datasources/${fresh('ds')}`, body: { type: 'kodo', spec: { bucket: b, keyPrefixes: ['../x'], fileType: 'json' } } })), 'E18638');
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/datasources/${fresh('ds')}`, body: { type: 'kodo', spec: { bucket: b, keyPrefixes: ['/etc'], fileType: 'json' } } })), 'E18638');
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/datasources/${fresh('ds')}`, body: { type: 'kodo', spec: { bucket: '../x', fileType: 'json' } } })), 'E18614');
    assert.equal(errorCode(await s.call({ method: 'POST', url: `/v2/datasources/${fresh('ds')}`, body: { type: 'hdfs', spec: { paths: ['hdfs://nn:9000/a/../../etc'], fileType: 'json' } } })), 'E18638');
    const list = JSON.parse((await s.call({ method: 'GET', url: '/v2/datasources' })).body);
    assert.ok(!list.datasources.some((d: { spec: { bucket?: string } }) => d.spec.bucket === '../x'));
  });

  it('never reads through a symlink that leaves the bucket', async () => {
    const b = bucket();
    putObject(s, b, 'x/a.json', jsonl([{ a: 1 }]));
    const outside = path.join(s.dir, 'outside');
    mkdirSync(outside, { recursive: true });
    writeFileSync(path.join(outside, 'secret.json'), jsonl([{ secret: 'x' }]));
    symlinkSync(outside, path.join(s.config.bucketsDir, b, 'x', 'link'));
    symlinkSync(path.join(outside, 'secret.json'), path.join(s.config.bucketsDir, b, 'x', 'file.json'));
    const schema = JSON.parse((await s.call({ method: 'POST', url: '/v2/schemas', body: { type: 'kodo', spec: { bucket: b, keyPrefixes: ['x/'], fileType: 'json' } } })).body).schema;
    assert.deepEqual(schema.map((f: { key: string }) => f.key), ['a']);
    symlinkSync(outside, path.join(s.config.bucketsDir, b, 'viaLink'));
    assert.equal(errorCode(await s.call({ method: 'POST', url: '/v2/schemas', body: { type: 'kodo', spec: { bucket: b, keyPrefixes: ['viaLink/'], fileType: 'json' } } })), 'E18620');
  });

  it('reads hdfs paths under the hdfs root and enforces per-account grants with E18665', async () => {
    putHdfs(s, 'bob/day1/a.json', jsonl([{ v: 1 }]));
    putHdfs(s, 'alice/a.json', jsonl([{ w: 1 }]));
    const asBob = (c: { method: string; url: string; body?: unknown }) => s.call({ ...c, ak: AK2, sk: SK2 });
    const ok = await asBob({ method: 'POST', url: '/v2/schemas', body: { type: 'hdfs', spec: { paths: ['hdfs://nn:9000/bob/day1'], fileType: 'json' } } });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(JSON.parse(ok.body).schema, [{ key: 'v', valtype: 'long', required: false }]);
    assert.equal(errorCode(await asBob({ method: 'POST', url: '/v2/schemas', body: { type: 'hdfs', spec: { path: ['/alice'], fileType: 'json' } } })), 'E18665');
    putObject(s, 'other-bucket', 'a.json', jsonl([{ a: 1 }]));
    assert.equal(errorCode(await asBob({ method: 'POST', url: `/v2/datasources/${fresh('ds')}`, body: { type: 'kodo', spec: { bucket: 'other-bucket', fileType: 'json' } } })), 'E18665');
    // Alice has no grants list: everything is allowed.
    assert.equal((await s.call({ method: 'POST', url: '/v2/schemas', body: { type: 'hdfs', spec: { paths: ['/alice'], fileType: 'json' } } })).statusCode, 200);
  });
});
