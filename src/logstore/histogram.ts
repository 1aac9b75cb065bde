import type Database from 'better-sqlite3';
import { ApiError } from '../errors.ts';
import { compileQuery, DEADLINE } from './query.ts';
import type { LogRepo } from './repo.ts';
import { bounded } from './search.ts';

const S = 1000;
/** Bucket widths the server picks from: the smallest giving at most 20 buckets. */
const WIDTHS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 1209600, 2592000, 7776000, 31536000].map((s) => s * S);
const MAX_BUCKETS = 20;

export interface HistogramAnswer {
  total: number;
  partialSuccess: boolean;
  buckets: Array<{ key: number; count: number }>;
}

/** The bucket width for a range (ms). */
export function bucketWidth(from: number, to: number): number {
  const span = Math.max(1, to - from);
  return WIDTHS.find((w) => Math.ceil(span / w) <= MAX_BUCKETS) ?? Math.ceil(span / MAX_BUCKETS);
}

/** A validated, compiled histogram, ready for a worker. */
export interface HistogramJob {
  set: string | undefined;
  params: Record<string, unknown>;
  /** The date field's column. */
  col: string;
  from: number;
  to: number;
  width: number;
}

/** Checks and compiles a histogram request (main thread: needs the repo's schema). */
export function planHistogram(repo: LogRepo, params: { q: string; from: unknown; to: unknown; field: unknown }): HistogramJob {
  const from = Number(params.from);
  const to = Number(params.to);
  if (params.from === undefined || params.from === '' || params.to === undefined || params.to === '') throw new ApiError('E8206');
  if (!Number.isSafeInteger(from) || from < 0) throw new ApiError('E8206', `from must be milliseconds since the epoch, got ${JSON.stringify(params.from)}`);
  if (!Number.isSafeInteger(to) || to < 0) throw new ApiError('E8207', `to must be milliseconds since the epoch, got ${JSON.stringify(params.to)}`);
  if (to <= from) throw new ApiError('E8208');
  const col = repo.columns.find((c) => c.path === params.field && c.type === 'date');
  if (!col) throw new ApiError('E8209', `field ${JSON.stringify(params.field)} is not a date field of the repo`);
  const q = compileQuery(params.q, repo);
  return { set: q.set, params: q.params, col: col.col, from, to, width: bucketWidth(from, to) };
}

/**
 * Counts matching documents per time bucket of a date field between from and
 * to (ms, inclusive), every bucket of the range listed (empty ones with 0).
 */
export function runHistogram(db: Database.Database, job: HistogramJob, limitMs: number): HistogramAnswer {
  const { from, to, width: w } = job;
  const first = Math.floor(from / w) * w;
  const c = `d.${job.col}`;
  const rows = bounded(db, limitMs, () => {
    if (job.set === undefined) {
      // Everything matches: one index range count per bucket, no document read (decision 015).
      return db.prepare(
        `WITH RECURSIVE b(k) AS (SELECT ? UNION ALL SELECT k + ? FROM b WHERE k + ? <= ?)
         SELECT k, (SELECT count(*) FROM docs d WHERE ${c} >= max(k, ?) AND ${c} < k + ? AND ${c} <= ?) AS n FROM b`,
      ).all(first, w, w, to, from, w, to) as Array<{ k: number; n: number }>;
    }
    return db.prepare(
      `SELECT (${c} / CAST(? AS INTEGER)) * CAST(? AS INTEGER) AS k, count(*) AS n FROM docs d
       WHERE ${c} >= ? AND ${c} <= ? AND ${DEADLINE} AND d.id IN (${job.set}) GROUP BY k`,
    ).all(w, w, from, to, job.params) as Array<{ k: number; n: number }>;
  });
  const counts = new Map(rows.map((r) => [r.k, r.n]));
  const buckets: HistogramAnswer['buckets'] = [];
  let total = 0;
  for (let k = first; k <= to; k += w) {
    const count = counts.get(k) ?? 0;
    total += count;
    buckets.push({ key: k, count });
  }
  return { total, partialSuccess: false, buckets };
}
