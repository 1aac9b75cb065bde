/**
 * Crash safety end to end: a real server process is killed with SIGKILL while
 * clients push; after restart every acknowledged point is read back intact.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { decodeLine } from '../src/ingest/points.ts';
import { AK, SK, tmpDir } from './helpers.ts';
import { spawnServer } from './spawn.ts';

describe('crash safety', () => {
  const dir = tmpDir();
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('loses no acknowledged point and returns no torn one after kill -9 during ingest', async () => {
    const acked = new Map<string, string>(); // id -> line
    let seq = 0;
    for (let round = 0; round < 4; round++) {
      const s = spawnServer(dir);
      await s.base;
      if (round === 0) {
        const res = await s.call('POST', '/v2/repos/crashy', JSON.stringify({ region: 'nb', schema: [{ key: 'id', valtype: 'string', required: true }, { key: 'n', valtype: 'long' }, { key: 'pad', valtype: 'string' }] }));
        assert.equal(res.status, 200, res.body);
      }
      let stop = false;
      const worker = async (): Promise<void> => {
        while (!stop) {
          const lines: string[] = [];
          const size = 1 + Math.floor(Math.random() * 2000);
          for (let i = 0; i < size; i++) lines.push(`id=r${round}-${seq++}\tn=${seq}\tpad=${'x'.repeat(40)}`);
          try {
            const res = await s.call('POST', '/v2/repos/crashy/data', lines.join('\n'), 'text/plain');
            if (res.status === 200) for (const l of lines) acked.set(l.slice(3, l.indexOf('\t')), l);
          } catch {
            return; // connection died with the server: not acknowledged
          }
        }
      };
      const workers = Array.from({ length: 6 }, worker);
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 700));
      s.child.kill('SIGKILL');
      stop = true;
      await Promise.all(workers);
      await s.exited;
    }
    assert.ok(acked.size > 1000, `only ${acked.size} points acknowledged`);

    // Restart in process on the same data dir and read everything back.
    const { app, ctx } = await buildApp(loadConfig({}, { dataDir: dir, accessKey: AK, secretKey: SK, logLevel: 'silent' }), { logger: false });
    try {
      const repo = ctx.repos.must('default', 'crashy');
      const log = await ctx.repos.log('default', repo);
      const schema = ctx.repos.compiled('default', repo);
      const seen = new Set<string>();
      for (let off = log.startOffset(); off < log.endOffset();) {
        const r = await log.read(off, 10_000);
        for (const line of r.lines) {
          const p = decodeLine(line, schema);
          assert.equal(typeof p.id, 'string', `torn line: ${line.slice(0, 80)}`);
          assert.equal(p.pad, 'x'.repeat(40), `torn line: ${line.slice(0, 80)}`);
          seen.add(p.id as string);
        }
        off = r.next;
      }
      const lost = [...acked.keys()].filter((id) => !seen.has(id));
      assert.deepEqual(lost.slice(0, 5), [], `${lost.length} acknowledged points lost`);
    } finally {
      await app.close();
    }
  });
});
