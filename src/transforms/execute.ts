import { ApiError } from '../errors.ts';
import type { CompiledSchema } from '../ingest/compiled.ts';
import { LineSink } from '../ingest/encode.ts';
import { decodeLine, encodePoint } from '../ingest/points.ts';
import type { Point, SchemaField } from '../ingest/types.ts';
import type { PluginService } from '../services/plugins.ts';
import type { RepoService } from '../services/repos.ts';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { OutputLimitError, type SqlEngine } from '../sql/engine.ts';
import type { MetaStore, TransformRow } from '../storage/meta.ts';
import { consumerId } from './consumer.ts';
import { sqlInputSchema, type TransformSpec } from './spec.ts';
import { readsStaged, type StagedRun, type StageManager } from './stages.ts';

export interface RunDeps {
  meta: MetaStore;
  repos: RepoService;
  sql: SqlEngine;
  plugins: PluginService;
  /** Staged sources for SQL-only transforms. */
  stages: StageManager;
  maxPointsPerRun: number;
  /** Most points one run may write (transformOutput); more fail the run before encoding. */
  maxOutputPoints?: number;
  /** Most encoded bytes one run may write (transformOutputBytes). */
  maxOutputBytes?: number;
  sqlTimeoutMs: number;
  /** Test-only fault injection (PIPELINE_FAILPOINT=transform-after-append). */
  failpoint?: string;
}

/** Progress kept with the committed offset (offsets.state_json). */
export interface TransformProgress {
  totalIn: number;
  totalOut: number;
  /** Set between "about to append" and "committed": how to tell after a crash whether the append happened. */
  pending?: { srcNext: number; destBase: number; destEnd: number; in: number };
  skipped?: number;
}

/** Milliseconds of a run's parts, rounded to 0.1. */
export interface RunSteps {
  /** Reading the source and computing: staging what was not staged ahead, plugin, SQL. */
  compute: number;
  /** Encoding the output rows for the destination log. */
  encode: number;
  /** Appending them (durable per the fsync policy) and committing the offset. */
  write: number;
}

export interface RunResult {
  in: number;
  out: number;
  steps: RunSteps;
  /** More source points are waiting (the run was capped). */
  more: boolean;
}

export { consumerId } from './consumer.ts';

/**
 * One transform run: read [committed, end) of the source (capped), run the
 * plugin then the SQL, append the rows to the destination and commit the
 * offset. The destination append and the offset live in two stores, so the
 * run records a `pending` marker first; after a crash the destination's end
 * offset tells whether the append happened (only this transform writes it),
 * and the run is committed or redone — never lost, never doubled.
 */
export async function runTransform(deps: RunDeps, account: string, t: TransformRow): Promise<RunResult> {
  const { meta, repos } = deps;
  const src = repos.must(account, t.repo);
  const dest = repos.must(account, t.destRepo);
  const srcLog = await repos.log(account, src);
  const destLog = await repos.log(account, dest);
  const consumer = consumerId(t);
  const srcKey = `${src.name}.${src.uid}`;
  const stored = meta.getOffset(account, consumer);
  let next = stored?.nextOffset ?? srcLog.startOffset();
  const progress: TransformProgress = { totalIn: 0, totalOut: 0, ...(stored?.state as Partial<TransformProgress> | undefined) };

  if (progress.pending) {
    const p = progress.pending;
    if (destLog.endOffset() >= p.destEnd) {
      next = p.srcNext;
      progress.totalIn += p.in;
      progress.totalOut += p.destEnd - p.destBase;
    }
    delete progress.pending;
    meta.setOffset(account, consumer, { logKey: srcKey, nextOffset: next, state: { ...progress } });
  }

  const none = { in: 0, out: 0, more: false, steps: { compute: 0, encode: 0, write: 0 } };
  if (next >= srcLog.endOffset()) return none;
  const t0 = performance.now();
  const spec = t.spec as unknown as TransformSpec;
  const limits = { points: deps.maxOutputPoints ?? Number.MAX_SAFE_INTEGER, bytes: deps.maxOutputBytes ?? Number.MAX_SAFE_INTEGER };
  let points: Point[] = [];
  let fields: SchemaField[] | undefined;
  let read: { from: number; next: number };
  let columns: StagedRun | undefined;
  if (readsStaged(t)) {
    // SQL only: the source range is queried where it is staged (columnar, in DuckDB).
    const res = await deps.stages.run(account, src, next, deps.maxPointsPerRun, spec.code ?? '', deps.sqlTimeoutMs, deps.maxOutputPoints);
    if (!res) return none;
    checkPoints(res.rows, limits);
    read = res;
    columns = res;
    fields = res.fields;
  } else {
    const batch = await srcLog.read(next, deps.maxPointsPerRun);
    read = batch;
    const srcSchema = repos.compiled(account, src);
    points = batch.lines.map((l) => decodeLine(l, srcSchema));
    if (spec.plugin) {
      points = await deps.plugins.run(account, spec.plugin, points, limits.points);
      checkPoints(points.length, limits);
      fields = sqlInputSchema(spec, src.schema);
    }
    if (spec.code) {
      const res = await deps.sql
        .run(t.repo, sqlInputSchema(spec, src.schema), points, spec.code, { timeoutMs: deps.sqlTimeoutMs, maxRows: limits.points })
        .catch((err: unknown) => Promise.reject(explainLimit(err)));
      points = res.rows;
      fields = res.fields;
    }
  }
  if (read.from > next) progress.skipped = (progress.skipped ?? 0) + (read.from - next); // dropped by retention
  const inCount = read.next - read.from;

  // The destination grows with output fields the transform added (only for repos it owns).
  const have = new Set(dest.schema.map((f) => f.key));
  const added = (fields ?? []).filter((f) => !have.has(f.key));
  let destRow = dest;
  if (added.length) {
    if (!t.createdDest) throw new ApiError('E18229', `output fields ${added.map((f) => f.key).join(', ')} are not in repo ${dest.name}`);
    repos.growSchema(account, dest.name, added);
    destRow = repos.must(account, dest.name);
  }
  const destSchema = repos.compiled(account, destRow);
  const t1 = performance.now();
  // Rows without any value are no points and are not stored.
  const out = await (columns ? encodeStaged(columns, destSchema, limits.bytes) : encodePoints(points, destSchema, limits.bytes)).catch(
    (err: unknown) => Promise.reject(explainLimit(err)),
  );

  const t2 = performance.now();
  const srcNext = read.next;
  if (out.count > 0) {
    const destBase = destLog.endOffset();
    meta.setOffset(account, consumer, {
      logKey: srcKey, nextOffset: next,
      state: { ...progress, pending: { srcNext, destBase, destEnd: destBase + out.count, in: inCount } },
    });
    await destLog.appendPayload(out.payload, out.count);
    if (deps.failpoint === 'transform-after-append') process.kill(process.pid, 'SIGKILL');
  }
  progress.totalIn += inCount;
  progress.totalOut += out.count;
  delete progress.pending;
  // Not fsynced when output was appended: after a power cut the durable pending
  // marker and the destination's end offset redo this commit at the next run.
  meta.setOffset(account, consumer, { logKey: srcKey, nextOffset: srcNext, state: { ...progress } }, { durable: out.count === 0 });
  if (readsStaged(t)) await deps.stages.committed(account, src.name);
  const t3 = performance.now();
  const tenth = (ms: number): number => Math.round(ms * 10) / 10;
  return {
    in: inCount, out: out.count, more: srcNext < srcLog.endOffset(),
    steps: { compute: tenth(t1 - t0), encode: tenth(t2 - t1), write: tenth(t3 - t2) },
  };
}

/** Output rows as one log payload: wire lines joined by '\n'. */
interface Encoded {
  payload: Buffer;
  count: number;
}

/** Encodes a staged run's query result straight from its vectors (sql/wire.ts), in steps. */
async function encodeStaged(res: StagedRun, schema: CompiledSchema, maxBytes: number): Promise<Encoded> {
  const sink = new LineSink();
  await res.encodeBounded(schema, sink, maxBytes);
  return { payload: sink.bytes(), count: sink.count };
}

/** Points encoded between two yields to the event loop (a few ms of work). */
const ENCODE_STEP = 16_384;

async function encodePoints(points: readonly Point[], schema: CompiledSchema, maxBytes: number): Promise<Encoded> {
  const lines: string[] = [];
  let chars = 0;
  for (let i = 0; i < points.length; i++) {
    if (i > 0 && i % ENCODE_STEP === 0) {
      // UTF-16 length: a lower bound of the UTF-8 bytes, exact for ASCII.
      if (chars > maxBytes) throw new OutputLimitError('bytes', chars, maxBytes);
      await yieldToLoop();
    }
    const line = encodePoint(points[i]!, schema);
    if (line !== '') {
      lines.push(line);
      chars += line.length + 1;
    }
  }
  const payload = Buffer.from(lines.join('\n'), 'utf8');
  if (payload.length > maxBytes) throw new OutputLimitError('bytes', payload.length, maxBytes);
  return { payload, count: lines.length };
}

function checkPoints(n: number, limits: { points: number }): void {
  if (n > limits.points) throw explainLimit(new OutputLimitError('points', n, limits.points));
}

/** An OutputLimitError as the transform's lastError: what happened and which setting raises the limit. */
function explainLimit(err: unknown): unknown {
  if (!(err instanceof OutputLimitError)) return err;
  const key = err.kind === 'points' ? 'transformOutput (PIPELINE_TRANSFORM_OUTPUT)' : 'transformOutputBytes (PIPELINE_TRANSFORM_OUTPUT_BYTES)';
  // The SQL stops one row past the limit, so the count beyond it is unknown.
  const what = `more than ${err.max} ${err.kind}`;
  return new OutputLimitError(err.kind, err.actual, err.max, `output limit: the run produced ${what}, over the limit of ${err.max} ${err.kind} per run; raise ${key} or make the transform return less`);
}
