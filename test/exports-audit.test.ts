/**
 * Findings of the exports audit, each driven through the HTTP API and read
 * back where a user would read it (dead-letter repos, receivers, buckets).
 */
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { errorCode, fresh, makeRepo, push, startServer, type TestServer } from './helpers.ts';
import { startMongoStandin, type MongoStandin } from './fixtures/mongo-standin.ts';
import { FAST_RETRIES, getExport, startWithReceiver, waitFor, type Receiver } from './exports-helpers.ts';

const DEAD_LETTER_FIELDS = [
  { key: 'record', valtype: 'string', required: true },
  { key: 'error', valtype: 'string', required: true },
  { key: 'export', valtype: 'string', required: true },
  { key: 'offset', valtype: 'long', required: true },
  { key: 'time', valtype: 'date', required: true },
];

describe('exports audit', () => {
  let s: TestServer;
  let rx: Receiver;
  let close: () => Promise<void>;
  before(async () => ({ s, rx, close } = await startWithReceiver()));
  after(() => close());

  it('sends a string that looks like the exact-long marker as the string it is (http json)', async () => {
    const repo = await makeRepo(s, fresh('repo'), [{ key: 's', valtype: 'string' }, { key: 'l', valtype: 'long' }]);
    assert.equal((await push(s, repo, 's=\u0000big5\tl=9223372036854775807')).statusCode, 200);
    const uri = `/${fresh('json')}`;
    const name = fresh('ex');
    assert.equal((await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', spec: { host: rx.host, uri, format: 'json' } } })).statusCode, 200);
    await waitFor(() => rx.requests.some((r) => r.url === uri), 'the request');
    const body = rx.requests.find((r) => r.url === uri)!.body;
    assert.equal(body, '{"s":"\\u0000big5","l":9223372036854775807}');
  });

  it('previews a logdb export without creating the log repo or adding fields to an existing one', async () => {
    const repo = await makeRepo(s, fresh('repo'), [{ key: 's', valtype: 'string' }, { key: 'n', valtype: 'long' }]);
    assert.equal((await push(s, repo, 's=a\tn=1')).statusCode, 200);
    const preview = (dest: string) => s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${fresh('l')}/preview`, body: { type: 'logdb', spec: { destRepoName: dest } } });
    const fresh1 = fresh('dest').toLowerCase();
    const p = await preview(fresh1);
    assert.equal(p.statusCode, 200, p.body);
    assert.deepEqual(JSON.parse(p.body).rendered.docs, [{ s: 'a', n: 1 }]);
    assert.equal((await s.call({ method: 'GET', url: `/v5/repos/${fresh1}` })).statusCode, 404, 'no log repo created by a preview');
    const existing = fresh('dest').toLowerCase();
    const made = await s.call({ method: 'POST', url: `/v5/repos/${existing}`, body: { region: 'nb', retention: '3d', schema: [{ key: 's', valtype: 'string', analyzer: 'standard' }] } });
    assert.equal(made.statusCode, 200, made.body);
    const p2 = await preview(existing);
    assert.equal(p2.statusCode, 200, p2.body);
    assert.deepEqual(JSON.parse(p2.body).rendered.docs, [{ s: 'a', n: 1 }]);
    const schema = JSON.parse((await s.call({ method: 'GET', url: `/v5/repos/${existing}` })).body).schema;
    assert.deepEqual(schema.map((f: { key: string }) => f.key), ['s'], 'the existing log repo keeps its schema');
  });

  it('creates no log repo for a logdb export refused for a bad common field', async () => {
    const repo = await makeRepo(s, fresh('repo'), [{ key: 's', valtype: 'string' }]);
    for (const extra of [{ deadLetterRepo: 'not a name' }, { omitInvalid: 'yes' }, { deadLetterRepo: repo }]) {
      const dest = fresh('dest').toLowerCase();
      const r = await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${fresh('l')}`, body: { type: 'logdb', spec: { destRepoName: dest, ...extra } } });
      assert.equal(errorCode(r), 'E18303', r.body);
      assert.equal((await s.call({ method: 'GET', url: `/v5/repos/${dest}` })).statusCode, 404, `no log repo after ${JSON.stringify(extra)}`);
    }
  });

  it('writes dead letters as the stored record, and refuses a deadLetterRepo whose escape mode would alter them on read', async () => {
    const repo = await makeRepo(s, fresh('repo'), [{ key: 's', valtype: 'string' }]);
    const uri = `/${fresh('refuse')}`;
    const prev = rx.respond;
    rx.respond = (r) => (r.url === uri ? 400 : prev(r));
    // The stored line (reference escapes) holds an escaped backslash and an escaped TAB.
    assert.equal((await push(s, repo, String.raw`s=C:\\dir\t"q"`)).statusCode, 200);
    for (const unescapeLine of [true, false]) {
      const dl = await makeRepo(s, fresh('dl'), DEAD_LETTER_FIELDS, { options: { unescapeLine } });
      const refused = await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${fresh('ex')}`, body: { type: 'http', spec: { host: rx.host, uri, deadLetterRepo: dl } } });
      assert.equal(errorCode(refused), 'E18303', refused.body);
      assert.match(JSON.parse(refused.body).error, /deadLetterRepo: repo dl_\w+ was created with options.unescapeLine/);
    }
    const dl = await makeRepo(s, fresh('dl'), DEAD_LETTER_FIELDS);
    const name = fresh('ex');
    const res = await s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'http', spec: { host: rx.host, uri, deadLetterRepo: dl } } });
    assert.equal(res.statusCode, 200, res.body);
    await waitFor(async () => (await getExport(s, repo, name)).status.deadLettered === 1, 'the dead letter');
    const letters = JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${dl}/data?count=10` })).body).records;
    assert.equal(letters.length, 1);
    assert.equal(letters[0].record, String.raw`s=C:\\dir\t"q"`, 'the record is the stored line, byte for byte');
    assert.equal(letters[0].offset, 0);
  });
});

describe('exports audit: mongo connection options', () => {
  let s: TestServer;
  let proxy: Server;
  let proxyPort = 0;
  let connections = 0;
  before(async () => {
    // 127.0.0.0/8 is denied: the "proxy" below must never be reached.
    s = await startServer({ exportRetryMin: '10ms', exportRetryMax: '50ms', exportDeny: '127.0.0.0/8' });
    proxy = createServer((sock) => {
      connections++;
      sock.destroy();
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    proxyPort = (proxy.address() as AddressInfo).port;
  });
  after(async () => {
    await s.close();
    await new Promise<void>((r) => proxy.close(() => r()));
  });

  it('refuses URI options that reach other hosts, read server files or fetch cloud credentials, and keeps the ordinary ones', async () => {
    const repo = await makeRepo(s, fresh('repo'), [{ key: 's', valtype: 'string' }]);
    const create = (host: string) => s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${fresh('m')}`, body: { type: 'mongo', spec: { host, dbName: 'db', collName: 'c' } } });
    const refused: Array<[string, RegExp]> = [
      [`mongodb://10.255.255.1:27017/?proxyHost=127.0.0.1&proxyPort=${proxyPort}`, /proxyHost/],
      ['mongodb://10.255.255.1:27017/?tls=true&TLSCAFILE=/etc/passwd', /tlsCAFile/],
      ['mongodb://10.255.255.1:27017/?tls=true&tlsCertificateKeyFile=/etc/ssl/private/key.pem', /tlsCertificateKeyFile/],
      ['mongodb://10.255.255.1:27017/?tls=true&tlsCRLFile=/etc/crl.pem', /tlsCRLFile/],
      ['mongodb://10.255.255.1:27017/?authMechanism=MONGODB-AWS', /authMechanism MONGODB-AWS/],
      ['mongodb://10.255.255.1:27017/?authMechanism=MONGODB-OIDC&authMechanismProperties=ENVIRONMENT:azure,TOKEN_RESOURCE:x', /authMechanism MONGODB-OIDC/],
      ['mongodb://user@10.255.255.1:27017/?authMechanism=GSSAPI', /authMechanism GSSAPI/],
    ];
    for (const [host, msg] of refused) {
      const r = await create(host);
      assert.equal(errorCode(r), 'E18303', `${host}: ${r.body}`);
      assert.match(JSON.parse(r.body).error, msg);
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(connections, 0, 'no connection reached the denied proxy');
    const ok = await create('mongodb://u:p@10.255.255.1:27017,10.255.255.2:27017/?replicaSet=rs0&authSource=admin&authMechanism=SCRAM-SHA-256&tls=true&connectTimeoutMS=1000');
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(JSON.parse((await s.call({ method: 'GET', url: `/v2/repos/${repo}/exports` })).body).exports.length, 1);
  });
});

describe('exports audit: kodo keys', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.close());

  it('refuses a keyPrefix whose keys could not be stored (a key segment over 255 bytes, a key over 1024 bytes once offsets grow)', async () => {
    const repo = await makeRepo(s, fresh('repo'), [{ key: 's', valtype: 'string' }]);
    const create = (keyPrefix: string) => s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${fresh('k')}`, body: { type: 'kodo', spec: { bucket: 'audit-keys', keyPrefix } } });
    const cases: Array<[string, RegExp]> = [
      ['a'.repeat(300), /longer than 255 bytes/],
      [`${'é'.repeat(130)}/x`, /longer than 255 bytes/],
      ['€€€/'.repeat(97), /longer than 1024 bytes/],
    ];
    for (const [prefix, msg] of cases) {
      const r = await create(prefix);
      assert.equal(r.statusCode, 400, `${prefix.slice(0, 20)}: ${r.statusCode}`);
      assert.equal(errorCode(r), 'E18303', r.body);
      assert.match(JSON.parse(r.body).error, msg);
    }
    assert.equal((await create(`${'b'.repeat(200)}/`)).statusCode, 200);
  });
});

describe('exports audit: mongo field names', () => {
  let s: TestServer;
  let mongo: MongoStandin;
  before(async () => {
    [mongo, s] = await Promise.all([startMongoStandin(), startServer(FAST_RETRIES)]);
  });
  after(() => Promise.all([s.close(), mongo.close()]));

  it('writes a field named __proto__ (a valid repo field name) into documents and update filters', async () => {
    const repo = await makeRepo(s, fresh('repo'), [{ key: '__proto__', valtype: 'string' }, { key: 'n', valtype: 'long' }]);
    assert.equal((await push(s, repo, '__proto__=a\tn=1\n__proto__=b\tn=2')).statusCode, 200);
    const ins = fresh('c');
    const ups = fresh('c');
    const create = (name: string, spec: Record<string, unknown>) => s.call({ method: 'POST', url: `/v2/repos/${repo}/exports/${name}`, body: { type: 'mongo', spec: { host: mongo.host, dbName: 'db', ...spec } } });
    assert.equal((await create('ins', { collName: ins })).statusCode, 200);
    assert.equal((await create('ups', { collName: ups, mode: 'UPSERT', updateKey: ['__proto__'] })).statusCode, 200);
    for (const n of ['ins', 'ups']) await waitFor(async () => (await getExport(s, repo, n)).status.lag.points === 0, n);
    const own = (d: Record<string, unknown>) => [Object.getOwnPropertyDescriptor(d, '__proto__')?.value, d.n];
    assert.deepEqual(mongo.docs('db', ins).map(own), [['a', 1n], ['b', 2n]]);
    assert.deepEqual(mongo.docs('db', ups).map(own), [['a', 1n], ['b', 2n]], 'one document per __proto__ value, not one updated twice');
  });
});
