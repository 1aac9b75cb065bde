import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { buildApp } from '../src/app.ts';
import { ConfigError, loadConfig, parseDuration, parseSize } from '../src/config.ts';
import { tmpDir } from './helpers.ts';

const ROOT = new URL('..', import.meta.url).pathname;

describe('configuration', () => {
  it('uses the documented defaults', () => {
    const c = loadConfig({});
    assert.equal(c.port, 9900);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.dataDir, path.resolve('./data'));
    assert.equal(c.fsync, 'always');
    assert.equal(c.clockSkewMs, 15 * 60_000);
    assert.deepEqual(c.regions, ['nb']);
    assert.ok(Object.isFrozen(c));
  });

  it('reports every invalid value at once', () => {
    assert.throws(
      () => loadConfig({ PIPELINE_PORT: 'abc', PIPELINE_FSYNC: 'sometimes', PIPELINE_CLOCK_SKEW: 'soon', PIPELINE_ACCESS_KEY: 'only-the-access-key' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.problems.length, 4, err.message);
        return true;
      },
    );
  });

  it('reads a config file with accounts, the environment winning', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ port: 9999, host: '0.0.0.0', accounts: [{ id: 'team_a', accessKey: 'team-a-key', secretKey: 'team-a-secret-0123' }] }));
    const c = loadConfig({ PIPELINE_CONFIG: file, PIPELINE_PORT: '9100' });
    assert.equal(c.port, 9100);
    assert.equal(c.host, '0.0.0.0');
    assert.deepEqual(c.accounts.map((a) => a.id), ['team_a']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('parses durations and sizes', () => {
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('7d'), 7 * 86_400_000);
    assert.equal(parseDuration(250), 250);
    assert.equal(parseDuration('later'), undefined);
    assert.equal(parseSize('16MB'), 16 * 1024 * 1024);
    assert.equal(parseSize('100kb'), 100 * 1024);
    assert.equal(parseSize('-1'), undefined);
  });

  it('generates credentials once, readable only by the owner, when no account is configured', async () => {
    const dir = tmpDir();
    const first = await buildApp(loadConfig({}, { dataDir: dir, logLevel: 'silent' }), { logger: false });
    assert.ok(first.generated);
    await first.app.close();
    assert.equal(statSync(path.join(dir, 'credentials.json')).mode & 0o777, 0o600);
    const second = await buildApp(loadConfig({}, { dataDir: dir, logLevel: 'silent' }), { logger: false });
    assert.equal(second.generated, undefined);
    assert.equal(second.ctx.accounts.get(first.generated.accessKey)?.secretKey, first.generated.secretKey);
    await second.app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints every configuration variable in --help and refuses a second server on one data dir', () => {
    const help = execFileSync(process.execPath, ['--import', 'tsx', 'src/main.ts', '--help'], { cwd: ROOT, encoding: 'utf8' });
    for (const v of ['PIPELINE_PORT', 'PIPELINE_HOST', 'PIPELINE_DATA_DIR', 'PIPELINE_ACCESS_KEY', 'PIPELINE_SECRET_KEY', 'PIPELINE_FSYNC', 'PIPELINE_RETENTION']) {
      assert.match(help, new RegExp(v));
    }
    const dir = tmpDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'LOCK'), String(process.pid)); // this live process "holds" the directory
    const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, PIPELINE_DATA_DIR: dir, PIPELINE_PORT: '0' }, timeout: 20_000 });
    assert.equal(res.status, 1);
    assert.match(res.stderr, /in use by process/);
    rmSync(dir, { recursive: true, force: true });
  });
});
