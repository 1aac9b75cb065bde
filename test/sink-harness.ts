/**
 * Drives a sink directly through the sink contract (src/exports/shared/sink.ts),
 * the way the delivery engine does: points are encoded to stored wire lines
 * and decoded back by the real ingest code, so a sink sees exactly what it
 * would see in production.
 */
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadConfig, type Config } from '../src/config.ts';
import type { ExportBatch, Sink, SinkKind } from '../src/exports/shared/sink.ts';
import { compileSchema } from '../src/ingest/compiled.ts';
import { decodeLine, encodePoint } from '../src/ingest/points.ts';
import { validateSchema } from '../src/ingest/schema.ts';
import type { Point, SchemaField } from '../src/ingest/types.ts';
import type { RepoRow } from '../src/storage/meta.ts';

/** A repo row with a validated schema (as the meta store would hold it). */
export function repoRow(name: string, schema: unknown): RepoRow {
  const fields: SchemaField[] = validateSchema(schema);
  const now = new Date().toISOString();
  return { name, uid: 'alice', region: 'nb', group: null, schema: fields, derivedFrom: null, extra: {}, createTime: now, updateTime: now };
}

/** A batch of the given points starting at `from`, appended at `times` (default: now). */
export function batchOf(repo: RepoRow, points: readonly Point[], from = 0, times?: readonly number[]): ExportBatch {
  const schema = compileSchema(repo.schema);
  const lines = points.map((p) => encodePoint(p, schema));
  const t = Date.now();
  let decoded: Point[] | undefined;
  return {
    from,
    lines,
    times: times ?? lines.map(() => t),
    points: () => (decoded ??= lines.map((l) => decodeLine(l, schema))),
  };
}

/** A config with the given overrides (e.g. tsdbUrl); sinks driven directly write nothing to the data dir. */
export function testConfig(overrides: Record<string, unknown> = {}): Config {
  return loadConfig({}, { dataDir: path.join(tmpdir(), 'sink-harness-unused'), logLevel: 'silent', ...overrides });
}

/** Validates `spec` like the exports API does, then creates the running sink. */
export async function openSink(kind: SinkKind, spec: Record<string, unknown>, repo: RepoRow, config: Config, exportName = 'exp'): Promise<Sink> {
  const stored = await kind.validate(spec, { account: 'alice', repo, config });
  return kind.create(stored, {
    account: 'alice',
    exportName,
    repo,
    schema: compileSchema(repo.schema),
    config,
    log: pino({ level: 'silent' }),
    now: () => Date.now(),
  });
}
