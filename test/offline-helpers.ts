/** Helpers for offline tests: files in bucket folders and under the hdfs root. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import type { TestServer } from './helpers.ts';

/** Writes a file at `key` in bucket `bucket` of the server's bucket store. */
export function putObject(s: TestServer, bucket: string, key: string, content: string | Buffer, gzip = false): string {
  const file = path.join(s.config.bucketsDir, bucket, key);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, gzip ? gzipSync(content) : content);
  return file;
}

/** Writes a file under the hdfs root. */
export function putHdfs(s: TestServer, rel: string, content: string): string {
  const file = path.join(s.config.hdfsRoot, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
  return file;
}

/** JSON lines of `rows`. */
export const jsonl = (rows: object[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

/** Writes a parquet file from a SELECT with plain DuckDB (test-side, not sandboxed). */
export async function writeParquet(file: string, select: string): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true });
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  await c.run(`COPY (${select}) TO '${file.replaceAll("'", "''")}' (FORMAT parquet)`);
  c.closeSync();
  db.closeSync();
}

/** Reads rows of files with plain DuckDB (test-side). */
export async function readRows(sql: string): Promise<Array<Record<string, unknown>>> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    return (await c.runAndReadAll(sql)).getRowObjectsJson() as Array<Record<string, unknown>>;
  } finally {
    c.closeSync();
    db.closeSync();
  }
}
