/**
 * The one contract every export sink implements (STYLE rule 7). The delivery
 * engine (exports/engine.ts) owns offsets, batching, retry with backoff,
 * bisection of rejected batches, dead letters and status; a sink only
 * validates its spec, converts records and talks to its target.
 *
 * Offsets: the engine reads the source repo's log from the export's committed
 * offset and hands consecutive batches to `deliver`. A sink answers with the
 * offset up to which the target now durably holds the data (`ackedThrough`).
 * Streaming sinks (http, tsdb, mongo, logdb) ack the whole batch; buffering
 * sinks (kodo files) ack only what is in closed files and report later acks
 * from `tick`. The engine commits an offset only once it is acked, so after a
 * crash the engine re-reads from the committed offset and the sink must
 * accept the same records again (at-least-once; kodo names files by offset
 * range so a redelivery rewrites the same object).
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../../config.ts';
import type { CompiledSchema } from '../../ingest/compiled.ts';
import type { Point } from '../../ingest/types.ts';
import type { RepoRow } from '../../storage/meta.ts';

/** Consecutive points of the source repo, as stored. */
export interface ExportBatch {
  /** Offset of lines[0]; the batch covers [from, from + lines.length). */
  readonly from: number;
  /** The stored wire lines (TAB-separated key=value, in the source repo's escape mode). */
  readonly lines: readonly string[];
  /** Append time (ms since epoch) of each line, parallel to `lines`. */
  readonly times: readonly number[];
  /** The decoded points, parallel to `lines` (decoded once on first call). */
  points(): readonly Point[];
}

/** A record a sink can never take (bad timestamp, value the target type cannot hold, ...). */
export interface Rejected {
  /** Source offset of the record. */
  offset: number;
  /** Why, in words a user can act on. */
  error: string;
}

export interface DeliveryResult {
  /** Every offset below this is durably in the target (or rejected); the engine may commit it. */
  ackedThrough: number;
  /** Records of this batch converted to nothing deliverable; the engine dead-letters or omits them. */
  rejected: Rejected[];
}

/** What the target would receive for a batch, without sending anything (preview API). */
export interface PreviewResult {
  /** Per-sink rendering: e.g. {body} for http, {key, lines} for kodo, {lines} for tsdb. */
  rendered: Record<string, unknown>;
  rejected: Rejected[];
}

/** A failure the engine retries with backoff (connection error, timeout, 429, 5xx). */
export class RetryableSinkError extends Error {
  constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super(message, options);
    this.name = 'RetryableSinkError';
    this.retryAfterMs = options?.retryAfterMs;
  }
  readonly retryAfterMs: number | undefined;
}

/**
 * The target refused the batch for good (e.g. a 4xx). The engine bisects the
 * batch to pin the refusal on single records, which become dead letters.
 */
export class PermanentSinkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentSinkError';
  }
}

/** What a running sink gets from the engine. */
export interface SinkContext {
  account: string;
  /** The export's name and its source repo. */
  exportName: string;
  repo: RepoRow;
  schema: CompiledSchema;
  config: Config;
  log: FastifyBaseLogger;
  /** The clock (injected in tests). */
  now(): number;
}

/** A running sink for one export. */
export interface Sink {
  /** Converts and delivers one batch; resolves once the target acknowledged. Throws Retryable/PermanentSinkError. */
  deliver(batch: ExportBatch, signal: AbortSignal): Promise<DeliveryResult>;
  /**
   * Called periodically by the engine (about every second, and at close):
   * buffering sinks close files whose interval elapsed and return the new ack;
   * streaming sinks omit it.
   */
  tick?(signal: AbortSignal): Promise<number | undefined>;
  /** Renders what deliver would send, sends nothing. */
  preview(batch: ExportBatch): Promise<PreviewResult>;
  /** Releases connections and buffers (buffered data is re-read from the committed offset later). Idempotent. */
  close(): Promise<void>;
}

/** Facts about the source repo a spec is checked against. */
export interface SpecContext {
  account: string;
  repo: RepoRow;
  config: Config;
  /** Checking for a preview: validate must not change anything (create a target, alter its schema). */
  preview?: boolean;
}

/** One sink kind: registered once in exports/registry.ts. */
export interface SinkKind {
  /** Lower-case type names this kind answers to (matched case-insensitively), e.g. ['mongo', 'mongodb']. */
  readonly types: readonly string[];
  /**
   * Validates a spec against the repo (ApiError E18303 naming the field and
   * why); unknown fields are kept and ignored. Returns the spec to store.
   * May check the target (e.g. that a bucket is allowed), never slowly.
   */
  validate(spec: Record<string, unknown>, ctx: SpecContext): Promise<Record<string, unknown>>;
  /** Builds a running sink for a validated spec. */
  create(spec: Record<string, unknown>, ctx: SinkContext): Sink;
}
