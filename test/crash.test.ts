/**
 * Crash safety end to end: a real server process is killed with SIGKILL while
 * clients push; after restart every acknowledged point is read back intact.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { request } from 'undici';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { decodeLine } from '../src/ingest/points.ts';
import { AK, SK, signRequest, tmpDir } from './helpers.ts';

const ROOT = new URL('..', import.meta.url).pathname;

async function startChild(dir: string): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, PIPELINE_PORT: '0', PIPELINE_DATA_DIR: dir, PIPELINE_ACCESS_KEY: AK, PIPELINE_SECRET_KEY: SK, PIPELINE_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const base = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 20_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening at (http:\/\/[^"\s]+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1] as string); }
    });
    child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}: ${out}`)); });
  });
  return { child, base };
}

async function signed(base: string, method: string, path: string, body: string, contentType: string) {
  const headers: Record<string, string> = { 'content-type': contentType, date: new Date().toUTCString() };
  headers.authorization = `Pandora ${AK}:${signRequest(SK, method, path, headers)}`;
  return request(base + path, { method: method as 'POST', headers, body });
}

describe('crash safety', () => {
  const dir = tmpDir();
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('loses no acknowledged point and returns no torn one after kill -9 during ingest', async () => {
    const acked = new Map<string, string>(); // id -> line
    let seq = 0;
    for (let round = 0; round < 4; round++) {
      const { child, base } = await startChild(dir);
      if (round === 0) {
        const res = await signed(base, 'POST', '/v2/repos/crashy', JSON.stringify({ region: 'nb', schema: [{ key: 'id', valtype: 'string', required: true }, { key: 'n', valtype: 'long' }, { key: 'pad', valtype: 'string' }] }), 'application/json');
        assert.equal(res.statusCode, 200, await res.body.text());
      }
      let stop = false;
      const worker = async (): Promise<void> => {
        while (!stop) {
          const lines: string[] = [];
          const size = 1 + Math.floor(Math.random() * 2000);
          for (let i = 0; i < size; i++) lines.push(`id=r${round}-${seq++}\tn=${seq}\tpad=${'x'.repeat(40)}`);
          try {
            const res = await signed(base, 'POST', '/v2/repos/crashy/data', lines.join('\n'), 'text/plain');
            await res.body.text();
            if (res.statusCode === 200) for (const l of lines) acked.set(l.slice(3, l.indexOf('\t')), l);
          } catch {
            return; // connection died with the server: not acknowledged
          }
        }
      };
      const workers = Array.from({ length: 6 }, worker);
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 700));
      child.kill('SIGKILL');
      stop = true;
      await Promise.all(workers);
      await new Promise((r) => child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r));
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
