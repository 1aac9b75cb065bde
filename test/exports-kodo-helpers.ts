/**
 * Helpers for kodo sink tests: a repo row, batches of real stored lines
 * (encoded as data push stores them), a sink context with an injected clock.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import type { Config } from '../src/config.ts';
import { compileSchema, encodePoint } from '../src/ingest/points.ts';
import { decodeLine } from '../src/ingest/points.ts';
import type { Point, SchemaField } from '../src/ingest/types.ts';
import { KODO } from '../src/exports/kodo/index.ts';
import type { ExportBatch, Sink, SinkContext } from '../src/exports/shared/sink.ts';
import type { RepoRow } from '../src/storage/meta.ts';

export const SCHEMA: SchemaField[] = [
  { key: 'host', valtype: 'string', required: true },
  { key: 'latency', valtype: 'long', required: false },
  { key: 'cpu', valtype: 'float', required: false },
  { key: 'ok', valtype: 'boolean', required: false },
  { key: 'ts', valtype: 'date', required: false },
  { key: 'tags', valtype: 'array', elemtype: 'string', required: false },
  { key: 'req', valtype: 'map', required: false, schema: [
    { key: 'path', valtype: 'string', required: false },
    { key: 'status', valtype: 'long', required: false },
  ] },
];

export function repoRow(name: string, schema: SchemaField[] = SCHEMA): RepoRow {
  const t = new Date().toISOString();
  return { name, uid: randomBytes(6).toString('hex'), region: 'nb', group: null, schema, derivedFrom: null, extra: {}, createTime: t, updateTime: t };
}

/** A point of SCHEMA numbered i. */
export function point(i: number): Point {
  return { host: `h${i}`, latency: i * 10, cpu: i / 4, ok: i % 2 === 0, ts: `2017-01-12T15:30:0${i % 10}+08:00`, tags: ['a', `t${i}`], req: { path: `/p/${i}`, status: 200 + i } };
}

/** A batch of stored lines for `points`, starting at offset `from`, all appended at `at` (or per point). */
export function batchOf(from: number, points: Point[], at: number | number[], schema: SchemaField[] = SCHEMA): ExportBatch {
  const cs = compileSchema(schema);
  const lines = points.map((p) => encodePoint(p, cs));
  const times = Array.isArray(at) ? at : points.map(() => at);
  let decoded: Point[] | undefined;
  return { from, lines, times, points: () => (decoded ??= lines.map((l) => decodeLine(l, cs))) };
}

export const silentLog = pino({ level: 'silent' }) as unknown as FastifyBaseLogger;

export interface Clock {
  t: number;
  now(): number;
}

export function clock(start = Date.UTC(2017, 0, 12, 7, 30, 0)): Clock {
  const c = { t: start, now: () => c.t };
  return c;
}

export function sinkCtx(config: Config, repo: RepoRow, c: Clock, exportName = 'e1', account = 'alice'): SinkContext {
  return { account, exportName, repo, schema: compileSchema(repo.schema), config, log: silentLog, now: () => c.now() };
}

/** Validates then creates a kodo sink, as the engine does. */
export async function kodoSink(spec: Record<string, unknown>, ctx: SinkContext): Promise<Sink> {
  const stored = await KODO.validate(spec, { account: ctx.account, repo: ctx.repo, config: ctx.config });
  return KODO.create(stored, ctx);
}

export const never = new AbortController().signal;

/** Every object key in a local bucket folder (recursively, temp files included), sorted. */
export function bucketFiles(config: Config, bucket: string): string[] {
  const root = path.join(config.bucketsDir, bucket);
  const out: string[] = [];
  const walk = (dir: string, rel: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const p = path.join(dir, n);
      if (statSync(p).isDirectory()) walk(p, rel + n + '/');
      else out.push(rel + n);
    }
  };
  walk(root, '');
  return out.sort();
}

/** The text of a local object, gunzipped when its key ends in .gz. */
export function readObject(config: Config, bucket: string, key: string): string {
  const raw = readFileSync(path.join(config.bucketsDir, bucket, key));
  return (key.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
}
