/**
 * Stages the sources of SQL transforms: decodes points into DuckDB as they
 * are pushed (the feeder), so that a run finds its range already columnar
 * and only runs its query. A run whose range is not staged yet (feeder
 * behind, budget full, new transform, restart) stages it itself first, so
 * staging ahead only moves work off the run, it never changes results.
 * See docs/decisions/007-staged-transform-sources.md.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import { repoEscapeMode, type RepoService } from '../services/repos.ts';
import type { SqlEngine } from '../sql/engine.ts';
import type { SourceStage, StageQueryResult } from '../sql/stage.ts';
import type { RepoLog } from '../storage/log/types.ts';
import type { MetaStore, RepoRow, TransformRow } from '../storage/meta.ts';
import { consumerId } from './consumer.ts';
import type { TransformSpec } from './spec.ts';

/** Points decoded per step: bounds how long one step holds the event loop (~20 ms). */
const SLICE = 32_768;

export interface StageOptions {
  /** Wire bytes staged ahead of runs, over all sources; 0 stages only inside runs. */
  aheadBytes: number;
  log: FastifyBaseLogger;
}

interface Source {
  account: string;
  repo: string;
  /** Repo incarnation and schema version the stage was built for. */
  uid: string;
  version: string;
  stage: SourceStage;
  feeding?: Promise<void>;
  again: boolean;
}

export interface StagedRun extends StageQueryResult {
  /** First offset read (above the requested one when retention dropped points). */
  from: number;
  /** Offset after the last point read. */
  next: number;
}

/** A transform whose runs read the source through a stage: SQL without a plugin. */
export function readsStaged(t: TransformRow): boolean {
  const spec = t.spec as unknown as TransformSpec;
  return typeof spec.code === 'string' && spec.code !== '' && !spec.plugin;
}

const keyOf = (account: string, repo: string): string => `${account}\u0000${repo}`;

export class StageManager {
  private readonly sources = new Map<string, Source>();
  private readonly opening = new Map<string, Promise<Source>>();
  private closed = false;

  constructor(
    private readonly meta: MetaStore,
    private readonly repos: RepoService,
    private readonly sql: SqlEngine,
    private readonly opts: StageOptions,
  ) {}

  /** Called after points were appended to `repo`: stages them ahead if SQL transforms read it and the budget allows. */
  notify(account: string, repo: string): void {
    if (this.closed || this.opts.aheadBytes <= 0) return;
    const k = keyOf(account, repo);
    const s = this.sources.get(k);
    if (s) {
      if (s.feeding) s.again = true;
      else s.feeding = this.feedAhead(s);
      return;
    }
    if (!this.meta.listTransforms(account, repo).some(readsStaged)) return;
    void this.source(account, repo).then((src) => {
      if (src && !src.feeding) src.feeding = this.feedAhead(src);
    }, (err: unknown) => this.opts.log.warn({ repo, error: String(err) }, 'staging failed'));
  }

  /**
   * Runs `sql` over up to `max` points of `src` from offset `next`, staging
   * whatever part of the range is not staged yet. Returns null when there is
   * nothing to read.
   */
  async run(account: string, src: RepoRow, next: number, max: number, sql: string, timeoutMs: number, maxRows?: number): Promise<StagedRun | null> {
    const s = await this.source(account, src.name);
    if (!s) throw new Error(`repo ${src.name} does not exist`);
    const log = await this.repos.log(account, src);
    return s.stage.exclusive(async () => {
      const { stage } = s;
      // Staged data starts after `next` (a new transform, a reset): restage from `next`.
      if (stage.count > 0 && (stage.start > next || stage.end < next)) await stage.clear();
      const target = Math.min(log.endOffset(), next + max);
      let from = stage.count > 0 ? next : -1;
      while ((stage.count === 0 || stage.end < target) && !this.closed) {
        const at = stage.count === 0 ? next : stage.end;
        const got = await this.fill(s, log, at, Math.min(SLICE, target - at));
        if (from < 0) from = got.from;
        if (got.n === 0 || got.from !== at) break;
        await yieldToLoop();
      }
      if (from < 0 || stage.count === 0) return null;
      from = Math.max(from, stage.start);
      const to = Math.min(stage.end, from + max);
      if (to <= from) return null;
      const res = await stage.query(from, to, sql, timeoutMs, maxRows);
      return { ...res, from, next: to };
    });
  }

  /** Frees what every staged reader of the source has consumed (call after a run committed). */
  async committed(account: string, repo: string): Promise<void> {
    const s = this.sources.get(keyOf(account, repo));
    if (!s) return;
    const low = await this.lowWater(s);
    if (low === null) return this.drop(account, repo);
    await s.stage.exclusive(() => s.stage.trim(low));
  }

  /** Drops a source's stage (its transforms changed or went). */
  async drop(account: string, repo: string): Promise<void> {
    const k = keyOf(account, repo);
    const s = this.sources.get(k);
    if (!s) return;
    this.sources.delete(k);
    await s.stage.exclusive(async () => s.stage.close());
  }

  /** Stages ahead, if any, in total. */
  stagedBytes(): number {
    let b = 0;
    for (const s of this.sources.values()) b += s.stage.bytes;
    return b;
  }

  /** Staged offsets of a source ([start, end)), for status and benchmarks. */
  staged(account: string, repo: string): { start: number; end: number } | null {
    const s = this.sources.get(keyOf(account, repo));
    return s ? { start: s.stage.start, end: s.stage.end } : null;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of [...this.sources.values()]) await this.drop(s.account, s.repo);
  }

  /** The source's stage, (re)built when the repo was recreated or its schema changed. */
  private async source(account: string, repo: string): Promise<Source | null> {
    const k = keyOf(account, repo);
    for (;;) {
      const row = this.meta.getRepo(account, repo);
      if (!row) {
        await this.drop(account, repo);
        return null;
      }
      const opening = this.opening.get(k);
      if (opening) {
        await opening.catch(() => undefined);
        continue;
      }
      const have = this.sources.get(k);
      if (have && have.uid === row.uid && have.version === row.updateTime) return have;
      if (have) {
        await this.drop(account, repo);
        continue;
      }
      const p = this.sql.openStage(repo, row.schema, repoEscapeMode(row)).then((stage) => {
        const s: Source = { account, repo, uid: row.uid, version: row.updateTime, stage, again: false };
        this.sources.set(k, s);
        return s;
      });
      this.opening.set(k, p);
      try {
        return await p;
      } finally {
        this.opening.delete(k);
      }
    }
  }

  /** Lowest committed offset of the staged readers, or null when none is left. */
  private async lowWater(s: Source): Promise<number | null> {
    const readers = this.meta.listTransforms(s.account, s.repo).filter(readsStaged);
    if (readers.length === 0) return null;
    const row = this.meta.getRepo(s.account, s.repo);
    if (!row) return null;
    const log = await this.repos.log(s.account, row);
    let low = Number.MAX_SAFE_INTEGER;
    for (const t of readers) low = Math.min(low, this.meta.getOffset(s.account, consumerId(t))?.nextOffset ?? log.startOffset());
    return low;
  }

  /** Decodes up to `max` points from `at` into the stage; `from` is where the log actually started. */
  private async fill(s: Source, log: RepoLog, at: number, max: number): Promise<{ from: number; n: number }> {
    if (max <= 0) return { from: at, n: 0 };
    const batch = await log.read(at, max);
    if (batch.lines.length === 0) return { from: batch.from, n: 0 };
    // Retention dropped points the stage would continue from: start afresh where the log starts.
    if (batch.from !== at && s.stage.count > 0) await s.stage.clear();
    const row = this.meta.getRepo(s.account, s.repo);
    if (!row || row.uid !== s.uid) throw new Error(`repo ${s.repo} changed while staging`);
    let bytes = 0;
    for (const l of batch.lines) bytes += l.length;
    await s.stage.appendLines(batch.from, batch.lines, bytes);
    return { from: batch.from, n: batch.lines.length };
  }

  /** Background feeding: slices of SLICE points until caught up or over budget. */
  private async feedAhead(s: Source): Promise<void> {
    try {
      for (;;) {
        s.again = false;
        const row = this.meta.getRepo(s.account, s.repo);
        if (!row || row.uid !== s.uid || row.updateTime !== s.version || this.closed) break;
        const log = await this.repos.log(s.account, row);
        const low = await this.lowWater(s);
        if (low === null) break;
        const step = await s.stage.exclusive(async (): Promise<'more' | 'done' | 'full'> => {
          if (this.stagedBytes() >= this.opts.aheadBytes) return 'full';
          if (s.stage.count > 0 && s.stage.end < low) await s.stage.clear(); // every reader is past it
          const at = s.stage.count > 0 ? s.stage.end : Math.max(low, log.startOffset());
          if (at >= log.endOffset()) return 'done';
          await this.fill(s, log, at, Math.min(SLICE, log.endOffset() - at));
          return 'more';
        });
        // Over budget: runs stage for themselves; the next push tries again.
        if (step === 'full' || (step === 'done' && !s.again)) break;
        await yieldToLoop();
      }
    } catch (err) {
      this.opts.log.warn({ repo: s.repo, error: err instanceof Error ? err.message : String(err) }, 'staging ahead failed; runs will stage themselves');
    } finally {
      s.feeding = undefined;
    }
  }
}
