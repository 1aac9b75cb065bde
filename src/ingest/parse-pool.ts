/**
 * A pool of parse worker threads for large push bodies. Parsing a 16 MB body
 * takes the main thread ~100 ms or more; sixteen at once held every other
 * request (and /health) for seconds. Bodies of at least `minBytes` are
 * validated on a worker instead, which also lets ingest use more than one core.
 */
import type { Worker } from 'node:worker_threads';
import { ApiError, type ErrorCode } from '../errors.ts';
import type { ParseJob, ParseReply } from './parse-worker.ts';
import { startWorker } from '../services/worker-entry.ts';
import type { EscapeMode } from './escapes.ts';
import type { SchemaField } from './types.ts';

/**
 * Bodies from this size are validated on a worker: parsing 4 MB holds the main
 * thread ~30 ms. Smaller bodies stay on the main thread, where they cost less
 * CPU than the hand-off (the ingest bench's 1 MB bodies measured ~12 % more CPU
 * per point through the workers on this 2-core machine).
 */
export const PARSE_WORKER_MIN_BYTES = 4 * 1024 * 1024;


/** A body validated by a worker: the point count and the bytes to append. */
export interface PooledResult {
  count: number;
  payload: Buffer;
}

export interface ParseRequest {
  body: Buffer;
  schemaKey: string;
  schemaVersion: string;
  schema: SchemaField[];
  /** The repo's escape mode (options.unescapeLine). */
  mode: EscapeMode;
  tags?: string;
  maxValueBytes: number;
}

interface Slot {
  worker: Worker;
  busy: number;
}

interface Waiting {
  resolve: (r: PooledResult) => void;
  reject: (e: Error) => void;
}

/** Parse workers: each job goes to the least busy worker; a crashed worker fails its jobs and is replaced. */
export class ParsePool {
  readonly #slots: Slot[] = [];
  readonly #waiting = new Map<number, Waiting & { slot: Slot }>();
  #nextId = 1;
  #closed = false;

  /** `workers` threads (0 = none: every body is parsed on the main thread); bodies from `minBytes` use them. */
  constructor(readonly workers: number, readonly minBytes: number) {
    for (let i = 0; i < workers; i++) this.#slots.push(this.#spawn());
  }

  /** Whether a body of this size goes to a worker. */
  wants(bytes: number): boolean {
    return this.#slots.length > 0 && bytes >= this.minBytes && !this.#closed;
  }

  /**
   * Validates a body on a worker; rejects with the ApiError parsePoints would
   * throw. The body may be moved to the worker: use only the result afterwards.
   */
  parse(req: ParseRequest): Promise<PooledResult> {
    const slot = this.#slots.reduce((a, b) => (b.busy < a.busy ? b : a));
    const id = this.#nextId++;
    const job: ParseJob = {
      id, body: req.body, schemaKey: req.schemaKey, schemaVersion: req.schemaVersion, schema: req.schema, mode: req.mode, tags: req.tags, maxValueBytes: req.maxValueBytes,
    };
    return new Promise<PooledResult>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject, slot });
      slot.busy++;
      // A body owning its whole memory moves to the worker without a copy (and is unusable here afterwards).
      const own = req.body.byteOffset === 0 && req.body.byteLength === req.body.buffer.byteLength && req.body.byteLength >= 64 * 1024;
      slot.worker.postMessage(job, own ? [req.body.buffer as ArrayBuffer] : []);
    });
  }

  /** Stops the workers; jobs still running fail. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled(this.#slots.map((s) => s.worker.terminate()));
    this.#slots.length = 0;
    for (const [id, w] of this.#waiting) {
      this.#waiting.delete(id);
      w.reject(new Error('parse pool closed'));
    }
  }

  #spawn(): Slot {
    const worker = startWorker(import.meta.url, 'parse-worker', { env: {} });
    worker.unref();
    const slot: Slot = { worker, busy: 0 };
    worker.on('message', (m: ParseReply) => this.#settle(m));
    worker.on('error', (err) => this.#replace(slot, err));
    worker.on('exit', (code) => {
      if (!this.#closed) this.#replace(slot, new Error(`parse worker exited with ${code}`));
    });
    return slot;
  }

  #settle(m: ParseReply): void {
    const w = this.#waiting.get(m.id);
    if (!w) return;
    this.#waiting.delete(m.id);
    w.slot.busy--;
    if ('error' in m) {
      const e = new ApiError(m.error.code as ErrorCode);
      // Keep the worker's exact message (line number, field).
      Object.defineProperty(e, 'message', { value: m.error.message });
      w.reject(e);
    } else if ('crash' in m) w.reject(new Error(`parse worker failed: ${m.crash}`));
    else w.resolve({ count: m.count, payload: Buffer.from(m.payload.buffer, m.payload.byteOffset, m.payload.byteLength) });
  }

  /** A worker died (out of memory, bug): fail its jobs and start another. */
  #replace(slot: Slot, err: Error): void {
    const i = this.#slots.indexOf(slot);
    if (i < 0 || this.#closed) return;
    for (const [id, w] of this.#waiting) {
      if (w.slot !== slot) continue;
      this.#waiting.delete(id);
      w.reject(err);
    }
    void slot.worker.terminate();
    this.#slots[i] = this.#spawn();
  }
}
