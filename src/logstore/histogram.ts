import { ApiError } from '../errors.ts';
import { compileQuery } from './query.ts';
import type { LogRepo } from './repo.ts';
import { bounded, QUERY_TIME_LIMIT_MS } from './search.ts';

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

/**
 * Counts matching documents per time bucket of a date field between from and
 * to (ms, inclusive), every bucket of the range listed (empty ones with 0).
 */
export function histogram(repo: LogRepo, params: { q: string; from: unknown; to: unknown; field: unknown }, limitMs = QUERY_TIME_LIMIT_MS): HistogramAnswer {
  const from = Number(params.from);
  const to = Number(params.to);
  if (params.from === undefined || params.from === '' || params.to === undefined || params.to === '') throw new ApiError('E8206');
  if (!Number.isSafeInteger(from) || from < 0) throw new ApiError('E8206', `from must be milliseconds since the epoch, got ${JSON.stringify(params.from)}`);
  if (!Number.isSafeInteger(to) || to < 0) throw new ApiError('E8207', `to must be milliseconds since the epoch, got ${JSON.stringify(params.to)}`);
  if (to <= from) throw new ApiError('E8208');
  const col = repo.columns.find((c) => c.path === params.field && c.type === 'date');
  if (!col) throw new ApiError('E8209', `field ${JSON.stringify(params.field)} is not a date field of the repo`);
  const q = compileQuery(params.q, repo);
  const w = bucketWidth(from, to);
  const rows = bounded(repo, limitMs, () => repo.db.prepare(
    `SELECT (d.${col.col} / CAST(? AS INTEGER)) * CAST(? AS INTEGER) AS k, count(*) AS n FROM docs d WHERE d.${col.col} >= ? AND d.${col.col} <= ? AND pl_deadline() AND ${q.where} GROUP BY k`,
  ).all(w, w, from, to, q.params) as Array<{ k: number; n: number }>);
  const counts = new Map(rows.map((r) => [r.k, r.n]));
  const buckets: HistogramAnswer['buckets'] = [];
  let total = 0;
  for (let k = Math.floor(from / w) * w; k <= to; k += w) {
    const count = counts.get(k) ?? 0;
    total += count;
    buckets.push({ key: k, count });
  }
  return { total, partialSuccess: false, buckets };
}
