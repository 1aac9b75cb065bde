/** Warm per-account DuckDB instances: runs reuse them, and an account's SQL reaches only what that account may read. */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AccountConfig } from '../src/config.ts';
import { accountDirs } from '../src/offline/engines.ts';
import { outputFile } from '../src/offline/runner.ts';
import { fresh } from './helpers.ts';
import { jsonl, ok, putObject, startOffline, type OfflineServer } from './offline-helpers.ts';
import { AK, AK2, SK, SK2 } from './helpers.ts';

describe('offline warm engines per account', () => {
  let s: OfflineServer;
  let alice: AccountConfig;
  let bob: AccountConfig;
  let aliceFile: string;
  let bobFile: string;
  let bobStaged: string;
  let bobOutput: string;
  before(async () => {
    s = await startOffline({
      accounts: [
        { id: 'alice', accessKey: AK, secretKey: SK, buckets: ['alice-b'] },
        { id: 'bob', accessKey: AK2, secretKey: SK2, buckets: ['bob-b'] },
      ],
    });
    alice = s.offline.deps.account('alice');
    bob = s.offline.deps.account('bob');
    aliceFile = putObject(s, 'alice-b', 'logs/a.json', jsonl([{ a: 1 }, { a: 2 }]));
    bobFile = putObject(s, 'bob-b', 'logs/b.json', jsonl([{ a: 7 }]));
    // What bob's runs leave staged while they write, and bob's job output read by his other jobs.
    bobStaged = path.join(s.config.bucketsDir, 'bob-b', '.offline-staging', 'x', 'out', 'part-0.json');
    mkdirSync(path.dirname(bobStaged), { recursive: true });
    writeFileSync(bobStaged, jsonl([{ staged: 1 }]));
    bobOutput = outputFile(s.offline.deps, 'bob', 'bobjob');
    mkdirSync(path.dirname(bobOutput), { recursive: true });
    writeFileSync(bobOutput, jsonl([{ out: 1 }]));
  });
  after(() => s.close());

  it('runs jobs of two accounts on their own warm instances, with exports into their own buckets', async () => {
    for (const [ak, sk, bucket] of [[AK, SK, 'alice-b'], [AK2, SK2, 'bob-b']] as const) {
      const ds = fresh('ds');
      const job = fresh('job');
      const call = async (method: string, url: string, body?: object) => {
        const res = await s.call({ method, url, body, ak, sk });
        assert.ok(res.statusCode < 300, `${method} ${url}: ${res.statusCode} ${res.body}`);
        return res.body ? JSON.parse(res.body) : {};
      };
      await call('POST', `/v2/datasources/${ds}`, { type: 'kodo', spec: { bucket, keyPrefixes: ['logs/'], fileType: 'json' } });
      await call('POST', `/v2/jobs/${job}`, { srcs: [{ name: ds, type: 'datasource', tableName: 't' }], computation: { code: 'SELECT count(*) AS c FROM t' }, scheduler: { type: 'manual' } });
      await call('POST', `/v2/jobs/${job}/exports/e`, { type: 'kodo', spec: { bucket, keyPrefix: `out/${job}/`, format: 'json' } });
      for (let i = 0; i < 2; i++) {
        await call('POST', `/v2/jobs/${job}/actions/start`, {});
        await s.offline.scheduler.idle();
      }
      const { history } = await call('GET', `/v2/jobs/${job}/history`);
      assert.deepEqual(history.map((r: { status: string }) => r.status), ['Successful', 'Successful']);
    }
    await ok(s, 'GET', '/v2/jobs');
  });

  it("lets an account's SQL read its own buckets on the warm instance but not another account's bucket, staging or output, nor the data dir", async () => {
    const box = await s.offline.engines.open(alice, { memoryLimit: '64MB', threads: 1, tempDir: path.join(s.dir, 'unused'), readFiles: [aliceFile], dirs: [] });
    try {
      const allowed = String((await box.conn.runAndReadAll("SELECT current_setting('allowed_directories')")).getRows()[0]?.[0]);
      assert.match(allowed, /alice-b\//, 'the warm instance (allowed: the whole granted bucket) served the run');
      const n = (await box.conn.runAndReadAll(`SELECT count(*) FROM read_json('${aliceFile}')`)).getRows()[0]?.[0];
      assert.equal(Number(n), 2);
      const denied = [bobFile, bobStaged, bobOutput, path.join(s.dir, 'meta.db'), path.join(s.config.bucketsDir, 'alice-b', '..', 'bob-b', 'logs', 'b.json'), path.join(s.config.bucketsDir, '*', 'logs', '*.json')];
      for (const f of denied) {
        await assert.rejects(box.conn.run(`SELECT * FROM read_text('${f}')`), /Permission Error/, f);
      }
      await assert.rejects(box.conn.run(`ATTACH '${path.join(s.dir, 'meta.db')}' AS m`), /Permission Error/);
      await assert.rejects(box.conn.run(`COPY (SELECT 1 AS x) TO '${path.join(s.config.bucketsDir, 'bob-b', 'x.csv')}'`), /Permission Error/);
      await assert.rejects(box.conn.run("SET allowed_directories = ['/']"), /locked/);
      await assert.rejects(box.conn.run("SET enable_external_access = true"), /locked/);
    } finally {
      await box.close();
    }
  });

  it('gives a run whose files lie outside the account folders (S3 downloads) its own per-run sandbox', async () => {
    const outside = path.join(s.dir, 'tmp', 'offline', 'fetch-test', 'f.json');
    mkdirSync(path.dirname(outside), { recursive: true });
    writeFileSync(outside, jsonl([{ a: 1 }]));
    const box = await s.offline.engines.open(bob, { memoryLimit: '64MB', threads: 1, tempDir: path.join(s.dir, 'tmp', 'offline', `run-${fresh('t')}`), readFiles: [outside], dirs: [] });
    try {
      const allowed = String((await box.conn.runAndReadAll("SELECT current_setting('allowed_directories')")).getRows()[0]?.[0]);
      assert.doesNotMatch(allowed, /bob-b/);
      assert.equal(Number((await box.conn.runAndReadAll(`SELECT count(*) FROM read_json('${outside}')`)).getRows()[0]?.[0]), 1);
      await assert.rejects(box.conn.run(`SELECT * FROM read_text('${bobFile}')`), /Permission Error/);
    } finally {
      await box.close();
    }
  });

  it('grants an account instance only folders inside their roots, ignoring grants that would climb out', () => {
    const dirs = accountDirs(s.config, { id: 'carol', accessKey: 'k', secretKey: 's', buckets: ['ok-b', '../..', '/etc'], hdfsPaths: ['logs', '../../'] }, path.join(s.dir, 'offline', 'output'));
    assert.deepEqual(dirs, [
      path.join(s.config.bucketsDir, 'ok-b') + '/',
      path.join(s.config.hdfsRoot, 'logs') + '/',
      path.join(s.dir, 'offline', 'output', 'carol') + '/',
    ]);
  });
});
