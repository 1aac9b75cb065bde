import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.ts';
import type { CompiledSchema } from '../ingest/compiled.ts';
import type { GroupCapacity } from '../services/capacity.ts';
import type { RepoService } from '../services/repos.ts';
import type { ReadResult, RepoLog } from '../storage/log/types.ts';
import type { ExportRow, MetaStore, RepoRow } from '../storage/meta.ts';
import { fitBytes, lineChars, makeBatch, sliceBatch, type BatchLimits } from './shared/batch.ts';
import { commonSpec } from './shared/common.ts';
import { writeDeadLetters } from './shared/deadletter.ts';
import { backoffDelay, type BackoffOptions, type Clock } from './shared/retry.ts';
import { PermanentSinkError, RetryableSinkError, type DeliveryResult, type ExportBatch, type Sink, type SinkKind } from './shared/sink.ts';

/** running: delivering or caught up; paused: group stopped; retrying: a retryable failure; error: any other failure (retried too). */
export type ExportState = 'running' | 'paused' | 'retrying' | 'error' | 'stopped';

/** What the engine gives each runner. */
export interface RunnerDeps {
  meta: MetaStore;
  repos: RepoService;
  config: Config;
  capacity: GroupCapacity;
  log: FastifyBaseLogger;
  clock: Clock;
  backoff: BackoffOptions;
  limits: BatchLimits;
  /** How often a caught-up export looks for new points nobody announced (derived repos). */
  idlePollMs: number;
}

/** Counters kept with the committed offset, so they survive restarts. */
export interface ExportProgress {
  delivered: number;
  deadLettered: number;
  omitted: number;
  /** Points dropped by source retention before the export read them. */
  skipped: number;
}

/** The offsets-table consumer id of an export. */
export const exportConsumer = (row: Pick<ExportRow, 'repo' | 'name'>): string => `export:${row.repo}/${row.name}`;

const TICK_MS = 1000;
/** Longest close() waits for a sink to give up its batch in flight. */
const CLOSE_WAIT_MS = 15_000;
/** Longest time an acked offset stays without fsync (power-cut redelivery bound). */
const DURABLE_MS = 1000;
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * Delivers one export: reads its repo's log from the committed offset in
 * bounded batches, hands them to the sink, bisects batches the target
 * refuses for good, dead-letters (or omits) what it can never take, and
 * commits only what the sink acknowledged. Failures are retried with
 * backoff and never skip data. Lifecycle: start(), idempotent close().
 */
export class ExportRunner {
  state: ExportState = 'running';
  lastBatch = 0;
  lastSuccess: number | null = null;
  lastError: { message: string; time: number } | null = null;
  failures = 0;
  nextRetry: number | null = null;
  progress: ExportProgress = { delivered: 0, deadLettered: 0, omitted: 0, skipped: 0 };
  committed = 0;
  /** Failed delivery attempts, and attempts made again after a backoff, since the process started (for metrics). */
  counts = { failures: 0, retries: 0 };
  /** The source log of the current session (lag at scrape time without a metadata read). */
  source: RepoLog | undefined;
  private ctrl = new AbortController();
  private loop?: Promise<void>;
  private wakeIdle?: () => void;
  private lastDurable = 0;

  constructor(
    private readonly deps: RunnerDeps,
    readonly account: string,
    public row: ExportRow,
    private readonly kind: SinkKind,
  ) {}

  get deadLetterRepo(): string {
    return commonSpec(this.row.name, this.row.spec).deadLetterRepo;
  }

  /** Starts delivering from the committed offset. */
  start(): void {
    if (this.loop) return;
    this.ctrl = new AbortController();
    this.state = 'running';
    this.loop = this.run(this.ctrl.signal).catch((err: unknown) => {
      this.state = 'error';
      this.lastError = { message: message(err), time: this.deps.clock.now() };
      this.deps.log.error({ export: this.label, error: this.lastError.message }, 'export stopped');
    });
  }

  /** New points may be there: ends an idle wait early. */
  wake(): void {
    this.wakeIdle?.();
  }

  /** Stops, waits for the batch in flight to end and closes the sink. Idempotent. */
  async close(): Promise<void> {
    this.ctrl.abort();
    this.wake();
    // A sink that ignores the abort must not hang shutdown or a PUT; whatever it commits later is still an acked offset.
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = await Promise.race([
      this.loop?.then(() => false),
      new Promise<boolean>((r) => { timer = setTimeout(() => r(true), CLOSE_WAIT_MS); }),
    ]);
    clearTimeout(timer);
    if (gaveUp) this.deps.log.error({ export: this.label }, `export sink did not stop within ${CLOSE_WAIT_MS} ms`);
    this.loop = undefined;
    this.state = 'stopped';
  }

  /** Applies a new spec: the sink is rebuilt and reading resumes from the committed offset. */
  async reconfigure(row: ExportRow): Promise<void> {
    await this.close();
    this.row = row;
    this.lastError = null;
    this.failures = 0;
    this.start();
  }

  private get label(): string {
    return `${this.row.repo}/${this.row.name}`;
  }

  /**
   * Runs sessions until closed: a session ends with an error (sink creation,
   * the log, a dead-letter repo that cannot be written; retried with backoff)
   * or when the repo's schema changed (the sink is rebuilt with the new one
   * and reading resumes from the committed offset).
   */
  private async run(signal: AbortSignal): Promise<void> {
    let attempt = 0;
    while (!signal.aborted) {
      let failure: unknown;
      try {
        await this.session(signal);
        attempt = 0;
      } catch (err) {
        failure = err;
      }
      if (signal.aborted || failure === undefined) continue;
      attempt++;
      this.failed(failure);
      const delay = backoffDelay(attempt, this.deps.backoff);
      this.nextRetry = this.deps.clock.now() + delay;
      await this.deps.clock.sleep(delay, signal);
      this.nextRetry = null;
      if (!signal.aborted) this.counts.retries++;
    }
  }

  private async session(signal: AbortSignal): Promise<void> {
    const { meta, repos } = this.deps;
    const repo = meta.getRepo(this.account, this.row.repo);
    if (!repo) throw new Error(`repo ${this.row.repo} does not exist`);
    const log = await repos.log(this.account, repo);
    this.source = log;
    const schema = repos.compiled(this.account, repo);
    const off = meta.getOffset(this.account, exportConsumer(this.row));
    this.committed = off?.nextOffset ?? log.startOffset();
    const stored = (off?.state ?? {}) as Partial<ExportProgress>;
    for (const k of ['delivered', 'deadLettered', 'omitted', 'skipped'] as const) this.progress[k] = Math.max(this.progress[k], stored[k] ?? 0);
    const sink = this.kind.create(this.row.spec, {
      account: this.account, exportName: this.row.name, repo, schema, config: this.deps.config, log: this.deps.log, now: () => this.deps.clock.now(),
    });
    try {
      await this.deliverLoop(signal, repo, log, schema, sink);
    } finally {
      if (sink.tick) {
        const ack = await sink.tick(AbortSignal.timeout(5000)).catch(() => undefined);
        if (ack !== undefined) this.commit(repo, ack);
      }
      if (this.lastDurable !== 0) this.commit(repo, this.committed, { durable: true });
      await sink.close();
    }
  }

  private async deliverLoop(signal: AbortSignal, repo: RepoRow, log: RepoLog, schema: CompiledSchema, sink: Sink): Promise<void> {
    const { capacity, limits, clock } = this.deps;
    let readPos = this.committed;
    let pending: ExportBatch | undefined;
    /** The target's answer for `pending`, kept while its dead letters are retried. */
    let delivered: DeliveryResult | undefined;
    let attempt = 0;
    let lastTick = clock.now();
    /** Characters per stored line, measured on the last batch; the first read is a small probe. */
    let avgLine = limits.bytes / 100;
    // The log reads by count; sizing the count from the last batch's line length keeps a read near the byte cap.
    const readCount = (): number => Math.max(1, Math.min(limits.points, Math.floor(limits.bytes / avgLine)));
    let prefetch: { at: number; read: Promise<ReadResult> } | undefined;
    while (!signal.aborted) {
      if (capacity.paused(this.account, repo.group)) {
        this.state = 'paused';
        await this.idle(1000, signal);
        continue;
      }
      if (sink.tick && clock.now() - lastTick >= TICK_MS) {
        lastTick = clock.now();
        const ack = await sink.tick(signal).catch((err: unknown) => this.failed(err));
        if (typeof ack === 'number') this.commit(repo, ack);
      }
      if (!pending) {
        if (readPos < log.startOffset()) {
          this.progress.skipped += log.startOffset() - readPos;
          readPos = log.startOffset();
        }
        if (readPos >= log.endOffset()) {
          if (this.state !== 'error' && this.state !== 'retrying') this.state = 'running';
          await this.idle(sink.tick ? Math.min(TICK_MS, this.deps.idlePollMs) : this.deps.idlePollMs, signal);
          continue;
        }
        // A grown schema rebuilds the sink (new fields convert with their types); the session restarts.
        if (this.deps.meta.getRepo(this.account, repo.name)?.updateTime !== repo.updateTime) return;
        const r = prefetch?.at === readPos ? await prefetch.read : await log.read(readPos, readCount());
        prefetch = undefined;
        if (r.from > readPos) this.progress.skipped += r.from - readPos;
        if (r.lines.length === 0) {
          readPos = r.next;
          continue;
        }
        const n = fitBytes(r.lines, limits.bytes);
        avgLine = Math.max(16, lineChars(r.lines) / r.lines.length);
        pending = n === r.lines.length ? makeBatch(r.from, r.lines, r.times, schema) : makeBatch(r.from, r.lines.slice(0, n), r.times.slice(0, n), schema);
      }
      // The next batch is read while this one is on the wire (so at most two batches are in memory).
      const nextAt = pending.from + pending.lines.length;
      if (!prefetch && nextAt < log.endOffset()) {
        prefetch = { at: nextAt, read: log.read(nextAt, readCount()) };
        prefetch.read.catch(() => undefined); // a failed prefetch is read again, and fails there
      }
      // The group's slot is held only while the batch is delivered, not while waiting for data or a retry.
      const release = await capacity.slots(this.account, repo.group).acquire();
      let done = false;
      let failure: unknown;
      try {
        if (!signal.aborted) {
          // A batch the target took is not sent again when only its dead letters failed to be written.
          delivered ??= await this.deliverAll(sink, pending, schema, signal);
          await this.handleRejected(repo, pending, delivered);
          done = true;
        }
      } catch (err) {
        failure = err;
      } finally {
        release();
      }
      if (signal.aborted) break;
      const result = delivered;
      if (!done || !result) {
        attempt++;
        this.failed(failure);
        const delay = backoffDelay(attempt, this.deps.backoff, failure instanceof RetryableSinkError ? failure.retryAfterMs : undefined);
        this.nextRetry = clock.now() + delay;
        await clock.sleep(delay, signal);
        this.nextRetry = null;
        if (!signal.aborted) this.counts.retries++;
        continue;
      }
      const n = pending.lines.length;
      this.progress.delivered += n - result.rejected.length;
      this.lastBatch = n - result.rejected.length;
      this.lastSuccess = clock.now();
      this.failures = 0;
      attempt = 0;
      this.state = 'running';
      readPos = pending.from + n;
      pending = undefined;
      delivered = undefined;
      this.commit(repo, result.ackedThrough);
    }
  }

  private failed(err: unknown): undefined {
    this.failures++;
    this.counts.failures++;
    this.lastError = { message: message(err), time: this.deps.clock.now() };
    this.state = err instanceof RetryableSinkError ? 'retrying' : 'error';
    this.deps.log.warn({ export: this.label, error: this.lastError.message, failures: this.failures }, 'export delivery failed');
    return undefined;
  }

  /**
   * Delivers a batch; when the target refuses it for good, halves it until the
   * refusal is pinned on single records, which come back as rejected.
   */
  private async deliverAll(sink: Sink, b: ExportBatch, schema: CompiledSchema, signal: AbortSignal): Promise<DeliveryResult> {
    try {
      return await sink.deliver(b, signal);
    } catch (err) {
      if (!(err instanceof PermanentSinkError) || signal.aborted) throw err;
      if (b.lines.length === 1) return { ackedThrough: b.from + 1, rejected: [{ offset: b.from, error: err.message }] };
      const mid = b.lines.length >> 1;
      const left = await this.deliverAll(sink, sliceBatch(b, 0, mid, schema), schema, signal);
      const right = await this.deliverAll(sink, sliceBatch(b, mid, b.lines.length, schema), schema, signal);
      return { ackedThrough: right.ackedThrough, rejected: [...left.rejected, ...right.rejected] };
    }
  }

  /** Dead-letters (or counts as omitted) what the sink rejected; durable before the commit passes them. */
  private async handleRejected(repo: RepoRow, b: ExportBatch, result: DeliveryResult): Promise<void> {
    if (result.rejected.length === 0) return;
    const common = commonSpec(this.row.name, this.row.spec);
    if (common.omitInvalid) {
      this.progress.omitted += result.rejected.length;
      return;
    }
    const letters = result.rejected.map((r) => ({ offset: r.offset, error: r.error, record: b.lines[r.offset - b.from] ?? '' }));
    await writeDeadLetters(this.deps, this.account, repo, this.row.name, common.deadLetterRepo, letters, this.deps.clock.now());
    this.progress.deadLettered += letters.length;
  }

  /**
   * Stores the acked offset and the counters. Commits are written at once
   * (a kill -9 loses none: the WAL is in the OS), but fsynced at most every
   * DURABLE_MS (and at close): a power cut may repeat up to that much
   * delivery, never lose any. An fsync per batch cost more than the batch
   * itself on a busy disk.
   */
  private commit(repo: RepoRow, ackedThrough: number, opts: { durable?: boolean } = {}): void {
    if (ackedThrough <= this.committed && !opts.durable) return;
    this.committed = Math.max(this.committed, ackedThrough);
    const now = Date.now();
    const durable = opts.durable === true || now - this.lastDurable >= DURABLE_MS;
    if (durable) this.lastDurable = now;
    this.deps.meta.setOffset(this.account, exportConsumer(this.row), {
      logKey: `${this.account}/${repo.name}.${repo.uid}`,
      nextOffset: this.committed,
      state: { ...this.progress },
    }, { durable });
  }

  private async idle(ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        this.wakeIdle = undefined;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wakeIdle = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
