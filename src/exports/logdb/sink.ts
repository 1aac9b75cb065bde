import { ApiError } from '../../errors.ts';
import type { Row } from '../../logstore/convert.ts';
import { valueAt } from '../shared/fields.ts';
import { RetryableSinkError, type DeliveryResult, type ExportBatch, type Rejected, type Sink, type SinkContext, type SinkKind } from '../shared/sink.ts';
import { Bad, flatPlan, flatRow } from './flat.ts';
import { checkRepo, destName, ensureRepo, parseMapping, store, type Mapping } from './spec.ts';

/** Every `.` in the keys of a jsonstring object becomes `_` (official-extensions 1.9), at any depth. */
function underscoreKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(underscoreKeys);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k.replaceAll('.', '_')] = underscoreKeys(x);
  return out;
}

/** A source value as the log repo takes it, or Bad. */
function sourceValue(m: Mapping, point: Record<string, unknown>): unknown {
  const v = valueAt(point, m.path!);
  const name = m.path!.join('.');
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'bigint') {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) return new Bad(`field "${name}": ${v} is beyond the log store's integer range (2^53)`);
    return Number(v);
  }
  if (m.field?.valtype === 'jsonstring' && typeof v === 'string') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      return new Bad(`field "${name}": jsonstring is not valid JSON`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return new Bad(`field "${name}": jsonstring is not a JSON object`);
    return underscoreKeys(parsed);
  }
  return v;
}

/** Builds the log document of a point; `empty` when every mapped value is absent. */
export function toDoc(mapping: readonly Mapping[], point: Record<string, unknown>): Record<string, unknown> | Bad | 'empty' {
  const doc: Record<string, unknown> = {};
  for (const m of mapping) {
    const v = m.children ? toDoc(m.children, point) : sourceValue(m, point);
    if (v instanceof Bad) return v;
    if (v !== undefined && v !== 'empty') doc[m.key] = v;
  }
  return Object.keys(doc).length === 0 ? 'empty' : doc;
}

/**
 * The logdb sink: converts each point through the `doc` mapping and writes
 * the batch into the built-in log store in one transaction, together with
 * the next source offset, so a redelivered batch is not indexed twice.
 */
class LogDbSink implements Sink {
  private readonly dest: string;
  private readonly mapping: Mapping[];
  private readonly omitEmpty: boolean;
  private readonly key: string;

  constructor(spec: Record<string, unknown>, private readonly ctx: SinkContext) {
    this.dest = destName(spec);
    this.mapping = parseMapping(spec.doc, ctx.repo.schema);
    this.omitEmpty = spec.omitEmpty === true;
    // The source repo's uid, not its name: a repo deleted and created again restarts at offset 0.
    this.key = `export:${ctx.repo.uid}/${ctx.exportName}`;
  }

  private render(batch: ExportBatch, skipBelow: number): { rows: Row[]; docs: Array<Record<string, unknown>>; rejected: Rejected[] } {
    const repo = store(this.ctx.config.dataDir).get(this.ctx.account, this.dest);
    const points = batch.points();
    const rows: Row[] = [];
    const docs: Array<Record<string, unknown>> = [];
    const rejected: Rejected[] = [];
    const plan = flatPlan(this.mapping, repo);
    for (let i = 0; i < points.length; i++) {
      const offset = batch.from + i;
      if (offset < skipBelow) continue;
      const made = plan ? flatRow(plan, points[i]!) : toDoc(this.mapping, points[i]!);
      if (made === 'empty' && this.omitEmpty) continue;
      let row: Row | Bad | { error: string };
      if (made === 'empty') row = repo.convert([{}])[0]!;
      else if (made instanceof Bad || plan) row = made as Row | Bad;
      else row = repo.convert([made])[0]!;
      if (row instanceof Bad || 'error' in row) rejected.push({ offset, error: row.error as string });
      else {
        rows.push(row);
        docs.push(row.doc);
      }
    }
    return { rows, docs, rejected };
  }

  async deliver(batch: ExportBatch): Promise<DeliveryResult> {
    const logdb = store(this.ctx.config.dataDir);
    const end = batch.from + batch.lines.length;
    try {
      const repo = await ensureRepo(logdb, this.ctx.account, this.dest, this.ctx.repo.region, this.mapping);
      const { rows, rejected } = this.render(batch, await logdb.sourceNext(repo, this.key));
      // Indexed on the log store's writer thread, with the next source offset in the same transaction.
      await logdb.write(repo, rows, { key: this.key, next: end });
      return { ackedThrough: end, rejected };
    } catch (err) {
      // E8004: the writer thread failed (crashed, or the layout moved under a queued batch); a retry runs on a fresh one.
      // E8113: the account has too many writes queued; a retry after the backoff finds room.
      if (err instanceof ApiError && err.code !== 'E8004' && err.code !== 'E8113') throw err;
      throw new RetryableSinkError(`log store write failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async preview(batch: ExportBatch) {
    // Without the log repo, or with fields it would still gain, the documents are shown as mapped (nothing is created or changed).
    if (!checkRepo(store(this.ctx.config.dataDir), this.ctx.account, this.dest, this.mapping)) {
      const docs: Array<Record<string, unknown>> = [];
      const rejected: Rejected[] = [];
      batch.points().forEach((p, i) => {
        const d = toDoc(this.mapping, p);
        if (d instanceof Bad) rejected.push({ offset: batch.from + i, error: d.error });
        else if (d !== 'empty' || !this.omitEmpty) docs.push(d === 'empty' ? {} : d);
      });
      return { rendered: { destRepoName: this.dest, docs }, rejected };
    }
    const { docs, rejected } = this.render(batch, 0);
    return { rendered: { destRepoName: this.dest, docs }, rejected };
  }

  async close(): Promise<void> {}
}

/** The logdb / logDB export kind (official-extensions 1.9). */
export const logdbSink: SinkKind = {
  types: ['logdb'],
  async validate(spec, ctx) {
    const dest = destName(spec);
    const mapping = parseMapping(spec.doc, ctx.repo.schema);
    for (const k of ['omitInvalid', 'omitEmpty'] as const) {
      if (spec[k] !== undefined && spec[k] !== null && typeof spec[k] !== 'boolean') throw new ApiError('E18303', `${k} must be true or false`);
    }
    // The SDK's AutoExportToLogDB creates the log repo first; otherwise it is created here (a preview only checks).
    if (ctx.preview) checkRepo(store(ctx.config.dataDir), ctx.account, dest, mapping);
    else await ensureRepo(store(ctx.config.dataDir), ctx.account, dest, ctx.repo.region, mapping);
    return spec;
  },
  create: (spec, ctx) => new LogDbSink(spec, ctx),
};
