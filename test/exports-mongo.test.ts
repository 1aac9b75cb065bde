/**
 * The mongo sink through the sink contract, with the official driver,
 * against the MongoDB wire-protocol STAND-IN (test/fixtures/mongo-standin.ts;
 * no MongoDB server installs here). The sink uses only the driver, so a real
 * mongod works unchanged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApiError } from '../src/errors.ts';
import { mongoKind } from '../src/exports/mongo/sink.ts';
import { sinkKind } from '../src/exports/registry.ts';
import { PermanentSinkError, RetryableSinkError, type Sink } from '../src/exports/shared/sink.ts';
import { startMongoStandin, type MongoStandin } from './fixtures/mongo-standin.ts';
import { fresh } from './helpers.ts';
import { batchOf, openSink, repoRow, testConfig } from './sink-harness.ts';

const SCHEMA = [
  { key: 'user', valtype: 'string' },
  { key: 'n', valtype: 'long' },
  { key: 'x', valtype: 'float' },
  { key: 'ok', valtype: 'boolean' },
  { key: 'at', valtype: 'date' },
  { key: 'tags', valtype: 'array', elemtype: 'string' },
  { key: 'geo', valtype: 'map', schema: [{ key: 'city', valtype: 'string' }, { key: 'zip', valtype: 'long' }] },
];
const repo = repoRow('src', SCHEMA);
const config = testConfig();
const signal = new AbortController().signal;

let mongo: MongoStandin;
const sinks: Sink[] = [];
before(async () => {
  mongo = await startMongoStandin();
});
after(async () => {
  for (const s of sinks) await s.close();
  await mongo.close();
});

async function sinkFor(spec: Record<string, unknown>, name = fresh('ex')): Promise<Sink> {
  const sink = await openSink(mongoKind, { host: mongo.host, dbName: 'db', ...spec }, repo, config, name);
  sinks.push(sink);
  return sink;
}

describe('mongo sink, official driver against the wire-protocol stand-in', () => {
  test('INSERT writes each record as it is, keeping long, float, date, array and map types', async () => {
    const coll = fresh('c');
    const sink = await sinkFor({ collName: coll, mode: 'INSERT' }, 'ex1');
    const res = await sink.deliver(batchOf(repo, [
      { user: 'ann', n: 9007199254740993n, x: 3, ok: true, at: '2026-11-30T08:00:00.123+08:00', tags: ['a', 'b'], geo: { city: 'Shanghai', zip: 200000 } },
      { user: 'bob', n: 2 },
    ], 40), signal);
    assert.deepEqual(res, { ackedThrough: 42, rejected: [] });
    const docs = mongo.docs('db', coll);
    assert.equal(docs.length, 2);
    const [a, b] = docs;
    assert.match(String(a?._id), /^alice\/src\/ex1\/[0-9a-z]+:40$/);
    assert.match(String(b?._id), /:41$/);
    assert.equal(a?.n, 9007199254740993n, 'a long is an exact int64');
    assert.equal(b?.n, 2n, 'small longs are int64 too');
    assert.equal(a?.x, 3);
    assert.deepEqual(a?.at, new Date('2026-11-30T00:00:00.123Z'));
    assert.deepEqual([a?.ok, a?.tags, a?.geo], [true, ['a', 'b'], { city: 'Shanghai', zip: 200000n }]);
  });

  test('INSERT is idempotent across redelivery: the same batch again meets duplicate keys, which count as done', async () => {
    const coll = fresh('c');
    const sink = await sinkFor({ collName: coll, mode: 'INSERT' });
    const batch = batchOf(repo, Array.from({ length: 50 }, (_, i) => ({ user: `u${i}`, n: i })), 1000);
    assert.deepEqual((await sink.deliver(batch, signal)).rejected, []);
    assert.deepEqual(await sink.deliver(batch, signal), { ackedThrough: 1050, rejected: [] });
    // A batch overlapping the first (the engine re-reads from its committed offset).
    assert.deepEqual((await sink.deliver(batchOf(repo, Array.from({ length: 60 }, (_, i) => ({ user: `u${i}`, n: i })), 1000), signal)).rejected, []);
    assert.equal(mongo.docs('db', coll).length, 60);
  });

  test('a doc template takes "#field" values at any depth, keeps literals and bare strings, and leaves out absent fields', async () => {
    const coll = fresh('c');
    const sink = await sinkFor({ collName: coll, doc: { who: '#user', meta: { source: 'pipeline', city: '#geo.city', list: ['#n', 'n', 7] }, missing: '#x' } });
    await sink.deliver(batchOf(repo, [{ user: 'ann', n: 5, geo: { city: 'Hangzhou' } }]), signal);
    const [d] = mongo.docs('db', coll);
    assert.deepEqual({ ...d, _id: undefined }, { _id: undefined, who: 'ann', meta: { source: 'pipeline', city: 'Hangzhou', list: [5n, 'n', 7] } });
  });

  test('UPSERT with $inc and $push aggregates per updateKey; a redelivered batch applies again (at-least-once)', async () => {
    const coll = fresh('c');
    const sink = await sinkFor({ collName: coll, mode: 'UPSERT', updateKey: ['user'], doc: { $inc: { total: '#n' }, $push: { seen: '#x' }, $set: { last: '#at' } } });
    const batch = batchOf(repo, [
      { user: 'ann', n: 2, x: 0.5, at: '2026-11-30T00:00:00Z' },
      { user: 'bob', n: 10, x: 1.5 },
      { user: 'ann', n: 3, x: 2.5, at: '2026-11-30T00:00:01Z' },
    ]);
    assert.deepEqual((await sink.deliver(batch, signal)).rejected, []);
    const byUser = (): Map<unknown, Record<string, unknown>> => new Map(mongo.docs('db', coll).map((d) => [d.user, d]));
    assert.equal(byUser().get('ann')?.total, 5n);
    assert.deepEqual(byUser().get('ann')?.seen, [0.5, 2.5]);
    assert.deepEqual(byUser().get('ann')?.last, new Date('2026-11-30T00:00:01Z'));
    assert.equal(byUser().get('bob')?.total, 10n);
    await sink.deliver(batch, signal);
    assert.equal(byUser().get('ann')?.total, 10n, 'a redelivery repeats the increments: UPDATE/UPSERT are at-least-once');
  });

  test('UPDATE changes only matching documents and, with a plain doc, sets fields instead of replacing the document', async () => {
    const coll = fresh('c');
    const seed = await sinkFor({ collName: coll, mode: 'INSERT', doc: { user: '#user', n: '#n', keep: 'me' } });
    await seed.deliver(batchOf(repo, [{ user: 'ann', n: 1 }]), signal);
    const sink = await sinkFor({ collName: coll, mode: 'update', updateKey: ['#user'], doc: { n: '#n', ok: '#ok' } });
    await sink.deliver(batchOf(repo, [{ user: 'ann', n: 7, ok: true }, { user: 'nobody', n: 9 }]), signal);
    const docs = mongo.docs('db', coll);
    assert.equal(docs.length, 1, 'UPDATE inserts nothing');
    assert.deepEqual([docs[0]?.user, docs[0]?.n, docs[0]?.ok, docs[0]?.keep], ['ann', 7n, true, 'me']);
  });

  test('a record without its updateKey value, or whose doc is empty, is rejected; the others are written', async () => {
    const coll = fresh('c');
    const sink = await sinkFor({ collName: coll, mode: 'UPSERT', updateKey: ['user'], doc: { $inc: { total: '#n' } } });
    const res = await sink.deliver(batchOf(repo, [{ user: 'ann', n: 1 }, { n: 2 }, { user: 'bob' }], 7), signal);
    assert.deepEqual(res.rejected, [
      { offset: 8, error: 'updateKey field "user" has no value: the record cannot be matched to a document' },
      { offset: 9, error: 'none of the fields of doc has a value: nothing to update' },
    ]);
    assert.equal(mongo.docs('db', coll).length, 1);
  });

  test('a document the server refuses is a rejected record with the server error; the rest of the batch is written', async () => {
    const coll = fresh('c');
    const sink = await sinkFor({ collName: coll });
    mongo.rejectWhen((d) => d.user === 'poison');
    try {
      const res = await sink.deliver(batchOf(repo, [{ user: 'a' }, { user: 'poison' }, { user: 'b' }], 20), signal);
      assert.equal(res.rejected.length, 1);
      assert.equal(res.rejected[0]?.offset, 21);
      assert.match(res.rejected[0]?.error ?? '', /MongoDB refused the document \(code 121\): Document failed validation/);
    } finally {
      mongo.rejectWhen(undefined);
    }
    assert.deepEqual(mongo.docs('db', coll).map((d) => d.user), ['a', 'b']);
  });

  test('a transient server error or a dropped connection is a RetryableSinkError, and the retry writes everything once', async () => {
    const coll = fresh('c');
    const sink = await sinkFor({ collName: coll });
    const batch = batchOf(repo, [{ user: 'a' }, { user: 'b' }]);
    mongo.failNext(1, { code: 91, errmsg: 'The server is in quiesce mode and will shut down' });
    await assert.rejects(sink.deliver(batch, signal), (err: Error) => err instanceof RetryableSinkError && /quiesce/.test(err.message));
    mongo.dropNext(1);
    await assert.rejects(sink.deliver(batch, signal), (err: Error) => err instanceof RetryableSinkError);
    assert.deepEqual((await sink.deliver(batch, signal)).rejected, []);
    assert.equal(mongo.docs('db', coll).length, 2);
  });

  test('a command error that is not transient is a PermanentSinkError (the engine bisects)', async () => {
    const sink = await sinkFor({ collName: fresh('c') });
    mongo.failNext(1, { code: 2, errmsg: 'BadValue (stand-in)' });
    await assert.rejects(sink.deliver(batchOf(repo, [{ user: 'a' }]), signal), (err: Error) => err instanceof PermanentSinkError && /BadValue/.test(err.message));
  });

  test('preview renders the operations as extended JSON and writes nothing', async () => {
    const coll = fresh('c');
    const sink = await sinkFor({ collName: coll, mode: 'UPSERT', updateKey: ['user'], doc: { $inc: { total: '#n' } } });
    const res = await sink.preview(batchOf(repo, [{ user: 'ann', n: 2 }, { n: 1 }], 3));
    assert.deepEqual(res.rendered, { database: 'db', collection: coll, mode: 'UPSERT', operations: [{ updateOne: { filter: { user: 'ann' }, update: { $inc: { total: 2 } }, upsert: true } }] });
    assert.equal(res.rejected[0]?.offset, 4);
    assert.equal(mongo.docs('db', coll).length, 0);
  });
});

describe('mongo export spec', () => {
  const ctx = { account: 'alice', repo, config };
  async function refused(spec: Record<string, unknown>, pattern: RegExp, cfg = config): Promise<void> {
    await assert.rejects(mongoKind.validate({ host: '127.0.0.1:27017', dbName: 'db', collName: 'c', ...spec }, { ...ctx, config: cfg }), (err: Error) => {
      assert.ok(err instanceof ApiError, err.message);
      assert.equal(err.code, 'E18303');
      assert.match(err.message, pattern);
      return true;
    });
  }

  test('a valid spec is stored as sent (version and unknown fields kept); mongo and mongoDB name the kind', async () => {
    const spec = { host: 'mongodb://u:p@db1.example:27017,db2.example/?replicaSet=rs0', dbName: 'db', collName: 'c', mode: 'UPSERT', updateKey: ['user'], doc: { $inc: { n: '#n' } }, version: '2.4.7', extra: 1 };
    assert.deepEqual(await mongoKind.validate(spec, ctx), spec);
    assert.equal(sinkKind('mongoDB'), mongoKind);
    assert.equal(sinkKind('MONGO'), mongoKind);
  });

  test('mistakes are E18303 naming the key and why', async () => {
    await refused({ host: undefined }, /host is required/);
    await refused({ host: 'not a host!' }, /host must be "ip:port"/);
    await refused({ host: 'mongodb://h:notaport/' }, /host: /);
    await refused({ dbName: 'a.b' }, /dbName "a\.b": MongoDB database names/);
    await refused({ collName: 'system.users' }, /collName "system\.users"/);
    await refused({ mode: 'MERGE' }, /mode must be one of INSERT, UPDATE, UPSERT/);
    await refused({ mode: 'UPDATE' }, /updateKey must list the fields/);
    await refused({ mode: 'UPSERT', updateKey: ['nope'] }, /updateKey\[0\] refers to "#nope", which is not a field of the repo/);
    await refused({ mode: 'UPSERT', updateKey: ['tags'] }, /a array: use scalar fields/);
    await refused({ doc: { a: { b: ['#zzz'] } } }, /doc\.a\.b\[0\] refers to "#zzz"/);
    await refused({ doc: { $inc: { n: '#n' } } }, /update operators, which need mode UPDATE or UPSERT/);
    await refused({ mode: 'UPSERT', updateKey: ['user'], doc: { $inc: { n: '#n' }, plain: 1 } }, /mixes update operators and plain fields/);
    await refused({ mode: 'UPSERT', updateKey: ['user'], doc: { $explode: { n: '#n' } } }, /doc\.\$explode: unknown update operator/);
    await refused({ doc: { a: { $where: 'x' } } }, /only top-level keys of doc may be operators/);
  });

  test('a host the outbound policy denies is refused at create', async () => {
    await refused({ host: '169.254.169.254:27017' }, /denied by the outbound policy/);
    await refused({ host: 'mongodb://10.0.0.5:27017/' }, /denied by the outbound policy/, testConfig({ exportDeny: '10.0.0.0/8' }));
  });
});
