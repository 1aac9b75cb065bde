/**
 * Test helpers for the object store: a config on a temp data dir, and an
 * S3 emulator (the npm package s3rver: no real S3-compatible server
 * installs here) on a free port with a temp directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';
import { loadConfig, type Config } from '../src/config.ts';

export function tempDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'pipeline-kodo-'));
}

/** A config on a fresh temp data dir (accounts alice and bob); extra overrides as loadConfig takes them. */
export function testConfig(overrides: Record<string, unknown> = {}): { config: Config; dir: string } {
  const dir = tempDir();
  const config = loadConfig({}, {
    dataDir: dir,
    accounts: [
      { id: 'alice', accessKey: 'ak-alice-0001', secretKey: 'sk-alice-000000000001' },
      { id: 'bob', accessKey: 'ak-bob-00001', secretKey: 'sk-bob-0000000000001', buckets: ['bob-logs'] },
    ],
    logLevel: 'silent',
    ...overrides,
  });
  return { config, dir };
}

export interface S3Emulator {
  endpoint: string;
  close(): Promise<void>;
}

/** Starts s3rver on 127.0.0.1 and a free port with the given buckets. */
export async function startS3Emulator(buckets: string[]): Promise<S3Emulator> {
  const dir = tempDir();
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: buckets.map((name) => ({ name, configs: [] })) });
  const addr = (await server.run()) as { address: string; port: number };
  return {
    endpoint: `http://127.0.0.1:${addr.port}`,
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
