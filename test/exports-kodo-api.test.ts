import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AK2, SK2, errorCode, fresh, makeRepo, push, startServer, type TestServer } from './helpers.ts';
import { getExport, waitFor } from './exports-helpers.ts';

/** Every object below a bucket folder, as keys: files being written (temp names, which listing skips) are left out. */
function files(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string): void => {
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      if (n.startsWith('.pipeline-tmp-')) continue;
      if (statSync(path.join(dir, n)).isDirectory()) walk(path.join(dir, n), `${rel}${n}/`);
      else out.push(rel + n);
    }
  };
  walk(root, '');
  return out.sort();
}

describe('kodo exports through the HTTP API', () => {
  let s: TestServer;
  let now = Date.UTC(2026, 10, 30, 8, 0, 0);
  before(async () => {
    s = await startServer({ accounts: [
      { id: 'alice', accessKey: 'test-access-key-1', secretKey: 'test-secret-key-0123456789' },
      { id: 'bob', accessKey: AK2, secretKey: SK2, buckets: ['bob-only'] },
    ] });
    // The engine's clock drives rotation; sleeps stay short and real so the runner keeps polling.
    s.ctx.exportEngine.setClock({ now: () => now, sleep: (ms, signal) => new Promise((r) => {
      const t = setTimeout(r, Math.min(ms, 10));
      signal.addEventListener('abort', () => { clearTimeout(t); r(); }, { once: true });
    }) });
  });
  after(() => s.close());

  it('creates a kodo export, writes the pushed points to a json file in the bucket folder when the interval elapses, and commits its offset', async () => {
    const repo = await makeRepo(s);
    const name = fresh('kodo');
    const bucket = fresh('bkt').replaceAll('_', '-');
    const spec = { bucket, keyPrefix: 'e2e/$(year)/', email: 'me@example.com', accessKey: 'AK', fields: { h: '#host', l: '#latency' }, format: 'json' };
    assert.equal((await push(s, repo, 'host=a\tlatency=1\nhost=b\tlatency=2\nhost=c')).statusCode, 200);
    const res = await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'KODO', spec } });
    assert.equal(res.statusCode, 200, res.body);
    const got = await getExport(s, repo, name);
    assert.equal(got.type, 'kodo');
    assert.deepEqual(got.spec, spec, 'email and accessKey are stored and returned');
    const root = path.join(s.config.bucketsDir, bucket);
    await waitFor(async () => (await getExport(s, repo, name)).status.delivered.total === 3, 'the sink took the points');
    assert.deepEqual(files(root), [], 'the file is still open');
    assert.equal((await getExport(s, repo, name)).status.lag.points, 3, 'not committed before the file is published');
    now += 30_000;
    await waitFor(() => files(root).length === 1, 'the file to appear');
    const [key] = files(root);
    assert.match(key as string, /^e2e\/2026\/[0-9a-f]{8}_0-2\.json$/);
    assert.deepEqual(readFileSync(path.join(root, key as string), 'utf8').trim().split('\n').map((l) => JSON.parse(l)), [{ h: 'a', l: 1 }, { h: 'b', l: 2 }, { h: 'c' }]);
    await waitFor(async () => (await getExport(s, repo, name)).status.lag.points === 0, 'the offset commit');
  });

  it('previews the object key and first lines without writing', async () => {
    const repo = await makeRepo(s);
    const bucket = fresh('pv').replaceAll('_', '-');
    assert.equal((await push(s, repo, 'host=a\tlatency=1\nhost=b')).statusCode, 200);
    const res = await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${fresh('kodo')}/preview`, body: { type: 'kodo', spec: { bucket, format: 'csv', delimiter: '|', fields: { host: '#host', latency: '#latency' } } } });
    assert.equal(res.statusCode, 200, res.body);
    const p = JSON.parse(res.body);
    assert.match(p.rendered.key, /^\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d_[0-9a-f]{8}_0-1\.csv$/);
    assert.deepEqual(p.rendered.lines, ['host|latency', 'a|1', 'b|']);
    assert.deepEqual(files(path.join(s.config.bucketsDir, bucket)), []);
  });

  it('refuses bad specs and ungranted buckets with precise codes and stores nothing', async () => {
    const repo = await makeRepo(s);
    const create = (body: unknown, ak?: string, sk?: string) => s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${fresh('bad')}`, body, ak, sk });
    const cases: Array<[unknown, string, RegExp]> = [
      [{ type: 'kodo', spec: { bucket: 'b-1', format: 'orc' } }, 'E18303', /format must be one of json, text, csv, parquet/],
      [{ type: 'kodo', spec: { bucket: 'b-1', format: 'csv' } }, 'E18303', /format csv needs a delimiter/],
      [{ type: 'kodo', spec: { bucket: 'b-1', rotateInterval: 5 } }, 'E18303', /rotateInterval must be between 30 and 600 seconds/],
      [{ type: 'kodo', spec: { bucket: 'b-1', fields: { x: '#missing' } } }, 'E18303', /fields.x refers to "#missing"/],
    ];
    for (const [body, code, msg] of cases) {
      const r = await create(body);
      assert.equal(errorCode(r), code, r.body);
      assert.match(JSON.parse(r.body).error, msg);
    }
    const bobRepo = fresh('bobrepo');
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${bobRepo}`, body: { region: 'nb', schema: [{ key: 'host', valtype: 'string' }] }, ak: AK2, sk: SK2 })).statusCode, 200);
    const refused = await s.call({ method: 'POST', url: `/v2/repos/${bobRepo}/exports/x1`, body: { type: 'kodo', spec: { bucket: 'alice-bucket' } }, ak: AK2, sk: SK2 });
    assert.equal(refused.statusCode, 404);
    assert.equal(errorCode(refused), 'E18323');
    assert.match(JSON.parse(refused.body).error, /not one of the buckets this account may use \(bob-only\)/);
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${bobRepo}/exports/x2`, body: { type: 'kodo', spec: { bucket: 'bob-only' } }, ak: AK2, sk: SK2 })).statusCode, 200);
    const list = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${repo}/exports` })).body);
    assert.deepEqual(list.exports, []);
  });
});
