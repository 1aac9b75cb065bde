import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { MetaStore } from '../src/storage/meta.ts';
import { OfflineStore, type JobRow } from '../src/offline/store.ts';

const job = (name: string, upstream: string): JobRow => ({
  name,
  spec: { srcs: [{ name: upstream, type: 'job', tableName: 'u' }], computation: { code: 'SELECT * FROM u', type: 'sql' }, scheduler: { type: 'depend' }, params: [], extra: {} },
  paused: false,
  createTime: '2026-11-30T00:00:00Z',
  updateTime: '2026-11-30T00:00:00Z',
});

test('the jobs that use a job follow job writes and deletes, forget a rolled-back write, and stay per account', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'offline-store-'));
  const meta = new MetaStore(path.join(dir, 'meta.db'));
  try {
    const store = new OfflineStore(meta.db);
    store.putJob('acc1', job('b', 'a'));
    assert.deepEqual(store.jobsUsing('acc1', 'job', 'a'), ['b']);
    assert.deepEqual(store.jobsUsing('acc2', 'job', 'a'), []);
    store.putJob('acc1', job('c', 'a'));
    assert.deepEqual(store.jobsUsing('acc1', 'job', 'a'), ['b', 'c']);
    assert.throws(() => store.tx(() => {
      store.putJob('acc1', job('d', 'a'));
      assert.deepEqual(store.jobsUsing('acc1', 'job', 'a'), ['b', 'c', 'd']);
      throw new Error('roll back');
    }), /roll back/);
    assert.deepEqual(store.jobsUsing('acc1', 'job', 'a'), ['b', 'c']);
    store.putJob('acc1', job('c', 'x'));
    assert.deepEqual(store.jobsUsing('acc1', 'job', 'a'), ['b']);
    assert.deepEqual(store.jobsUsing('acc1', 'job', 'x'), ['c']);
    store.deleteJob('acc1', 'b');
    assert.deepEqual(store.jobsUsing('acc1', 'job', 'a'), []);
    assert.deepEqual(store.jobsUsing('acc1', 'datasource', 'x'), []);
  } finally {
    meta.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a run marked Running keeps its start time and the connection stays fully durable afterwards', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'offline-store-'));
  const meta = new MetaStore(path.join(dir, 'meta.db'));
  try {
    const store = new OfflineStore(meta.db);
    store.putJob('acc1', job('b', 'a'));
    const run = store.addRun('acc1', 'b', 1000, {}, 1001);
    store.markRunning('acc1', 'b', run.runId, 1234);
    const got = store.getRun('acc1', 'b', run.runId);
    assert.equal(got?.status, 'Running');
    assert.equal(got?.startTime, 1234);
    assert.equal(meta.db.pragma('synchronous', { simple: true }), 2);
  } finally {
    meta.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
