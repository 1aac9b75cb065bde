/**
 * Effectively-once transform output: the server is killed (SIGKILL, via the
 * PIPELINE_FAILPOINT=transform-after-append fault point) after appending a
 * run's output to the destination and before committing the source offset.
 * After restart the run is neither lost nor doubled. Also: schedules and
 * offsets survive a clean restart.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { spawnServer } from './spawn.ts';
import { AK, SK, tmpDir } from './helpers.ts';

async function waitFor(fn: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!(await fn())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('transform crash safety', () => {
  const dir = tmpDir();
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('neither loses nor duplicates output when killed between append and commit', async () => {
    const a = spawnServer(dir, { PIPELINE_FAILPOINT: 'transform-after-append' });
    await a.base;
    assert.equal((await a.call('POST', '/v2/repos/src', JSON.stringify({ region: 'nb', schema: [{ key: 'id', valtype: 'long' }] }))).status, 200);
    assert.equal((await a.call('POST', '/v2/repos/src/transforms/dbl/to/out', JSON.stringify({ mode: 'sql', code: 'select id, id * 2 as twice from src', interval: '5s' }))).status, 200);
    const ids = Array.from({ length: 500 }, (_, i) => i);
    assert.equal((await a.call('POST', '/v2/repos/src/data', ids.map((i) => `id=${i}`).join('\n'), 'text/plain')).status, 200);
    await a.exited; // the fault point killed the server right after the first output append
    assert.equal(a.child.signalCode, 'SIGKILL');

    const b = spawnServer(dir);
    await b.base;
    try {
      // After restart the pending run is recognised as applied; more input flows normally.
      assert.equal((await b.call('POST', '/v2/repos/src/data', 'id=1000\nid=1001', 'text/plain')).status, 200);
      await waitFor(async () => {
        const t = JSON.parse((await b.call('GET', '/v2/repos/src/transforms/dbl')).body);
        return t.status.total.in === 502 && t.status.lag.points === 0;
      }, 15_000, 'the transform to catch up');
      const t = JSON.parse((await b.call('GET', '/v2/repos/src/transforms/dbl')).body);
      assert.deepEqual(t.status.total, { in: 502, out: 502 });
      const sample = JSON.parse((await b.call('GET', '/v2/repos/out/data?count=3')).body);
      assert.deepEqual(sample.records, [{ id: 499, twice: 998 }, { id: 1000, twice: 2000 }, { id: 1001, twice: 2002 }]);
    } finally {
      b.child.kill('SIGTERM');
      await b.exited;
    }
    // Read the whole destination back in process: every id exactly once.
    const { buildApp } = await import('../src/app.ts');
    const { loadConfig } = await import('../src/config.ts');
    const { decodeLine } = await import('../src/ingest/points.ts');
    const { app, ctx } = await buildApp(loadConfig({}, { dataDir: dir, accessKey: AK, secretKey: SK, logLevel: 'silent' }), { logger: false });
    try {
      const out = ctx.repos.must('default', 'out');
      const log = await ctx.repos.log('default', out);
      const r = await log.read(0, 10_000);
      const got = r.lines.map((l) => decodeLine(l, ctx.repos.compiled('default', out)).id as number);
      assert.deepEqual(got, [...ids, 1000, 1001]);
    } finally {
      await app.close();
    }
  });
});
