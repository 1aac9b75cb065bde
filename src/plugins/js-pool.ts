/**
 * A small pool of plugin sandbox hosts ("workers": child processes by
 * default, see js-channel.ts). Each worker runs one request at a time; a
 * request that overruns its timeout or blows the heap limit gets its worker
 * killed and replaced, so a bad plugin costs one worker restart and never
 * blocks other plugins for longer than the timeout.
 */
import { openChannel, type Channel, type ChannelFailure, type Isolation } from './js-channel.ts';
import { PluginMemoryError, PluginRunError, PluginTimeoutError, PluginInvalidError } from './errors.ts';
import type { PluginForm } from './js-sandbox.ts';
import type { WorkerReply, WorkerRequest } from './js-worker.ts';

/** Options for {@link JsWorkerPool}. */
export interface PoolOptions {
  workers: number;
  timeoutMs: number;
  memoryMb: number;
  isolation: Isolation;
}

/** One unit of work for a worker. `label` names the plugin in error messages. */
export interface PoolJob {
  op: 'compile' | 'run';
  key: string;
  code: string;
  label: string;
  input?: string;
  big?: boolean;
  maxOut?: number;
  /** Checked before dispatch: jobs of a run that already failed are dropped. */
  cancelled?: () => boolean;
}

/** What a finished job yields. */
export interface PoolResult {
  form: PluginForm;
  output?: string;
}

interface Pending {
  job: PoolJob;
  resolve: (r: PoolResult) => void;
  reject: (e: Error) => void;
}

interface Slot {
  ch: Channel;
  ready: boolean;
  dead: boolean;
  /** Plugin keys this worker has compiled, so their code need not be resent. */
  known: Set<string>;
  active?: { id: number; pending: Pending; timer: NodeJS.Timeout };
}

/** Runs plugin jobs on sandbox hosts (processes or threads) with a per-job timeout and heap limit. */
export class JsWorkerPool {
  readonly #opts: PoolOptions;
  readonly #slots: Slot[] = [];
  readonly #queue: Pending[] = [];
  #nextId = 1;
  #closed = false;

  constructor(opts: PoolOptions) {
    this.#opts = opts;
  }

  /**
   * Queues a job; resolves when a worker finished it.
   * @throws PluginInvalidError, PluginRunError, PluginTimeoutError or PluginMemoryError.
   */
  submit(job: PoolJob): Promise<PoolResult> {
    if (this.#closed) return Promise.reject(new PluginRunError('the JavaScript plugin runtime is closed'));
    return new Promise<PoolResult>((resolve, reject) => {
      this.#queue.push({ job, resolve, reject });
      this.#pump();
    });
  }

  /** Terminates all workers and fails queued jobs. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#queue.splice(0)) p.reject(new PluginRunError('the JavaScript plugin runtime is closed'));
    const slots = this.#slots.splice(0);
    await Promise.all(
      slots.map((slot) => {
        slot.dead = true;
        if (slot.active) {
          clearTimeout(slot.active.timer);
          slot.active.pending.reject(new PluginRunError('the JavaScript plugin runtime is closed'));
        }
        return slot.ch.kill();
      }),
    );
  }

  #pump(): void {
    while (this.#queue.length > 0 && !this.#closed) {
      const slot = this.#slots.find((s) => s.ready && !s.active);
      if (!slot) {
        const starting = this.#slots.filter((s) => !s.ready).length;
        if (this.#slots.length < this.#opts.workers && starting < this.#queue.length) this.#spawn();
        return;
      }
      const pending = this.#queue.shift();
      if (!pending) return;
      if (pending.job.cancelled?.()) {
        pending.reject(new PluginRunError('cancelled'));
        continue;
      }
      this.#start(slot, pending);
    }
  }

  #spawn(): void {
    const slot = { ready: false, dead: false, known: new Set<string>() } as Slot;
    slot.ch = openChannel(this.#opts.isolation, this.#opts.memoryMb, {
      message: (reply) => this.#onReply(slot, reply),
      failed: (f) => this.#retire(slot, this.#failure(slot, f), false),
    });
    slot.ch.setRef(true); // starting for queued work
    this.#slots.push(slot);
  }

  #failure(slot: Slot, f: ChannelFailure): Error {
    const label = slot.active?.pending.job.label ?? 'plugin';
    if (f.outOfMemory) return new PluginMemoryError(`${label} exceeded the memory limit of ${this.#opts.memoryMb} MB`, this.#opts.memoryMb);
    return new PluginRunError(`${label} crashed its sandbox: ${f.detail}`);
  }

  #start(slot: Slot, pending: Pending): void {
    const id = this.#nextId++;
    const timer = setTimeout(() => {
      const { label } = pending.job;
      const ms = this.#opts.timeoutMs;
      this.#retire(slot, new PluginTimeoutError(`${label} did not finish within ${ms} ms`, ms), true);
    }, this.#opts.timeoutMs);
    slot.active = { id, pending, timer };
    slot.ch.setRef(true); // a running job keeps the process alive, an idle pool does not
    this.#post(slot, id, pending.job);
  }

  #post(slot: Slot, id: number, job: PoolJob): void {
    const req: WorkerRequest = { id, op: job.op, key: job.key };
    if (!slot.known.has(job.key)) req.code = job.code;
    if (job.input !== undefined) req.input = job.input;
    if (job.big) req.big = true;
    if (job.maxOut !== undefined) req.maxOut = job.maxOut;
    slot.known.add(job.key);
    slot.ch.send(req);
  }

  #onReply(slot: Slot, reply: WorkerReply): void {
    if (slot.dead) return;
    if (reply.type === 'ready') {
      slot.ready = true;
      slot.ch.setRef(false);
      this.#pump();
      return;
    }
    const active = slot.active;
    if (!active || active.id !== reply.id) return;
    const { pending } = active;
    if (reply.type === 'failed' && reply.kind === 'missing') {
      slot.known.delete(pending.job.key); // evicted from the worker's cache: resend with code
      this.#post(slot, active.id, pending.job);
      return;
    }
    clearTimeout(active.timer);
    slot.active = undefined;
    slot.ch.setRef(false);
    if (reply.type === 'done') {
      const result: PoolResult = { form: reply.form };
      if (reply.output !== undefined) result.output = reply.output;
      pending.resolve(result);
    } else if (reply.kind === 'invalid') {
      pending.reject(new PluginInvalidError(`${pending.job.label} is invalid: ${reply.message}`));
    } else {
      pending.reject(new PluginRunError(`${pending.job.label} failed: ${reply.message}`));
    }
    this.#pump();
  }

  /** Takes a worker out of service, failing its job; `kill` terminates it (timeouts). */
  #retire(slot: Slot, error: Error, kill: boolean): void {
    if (slot.dead) return;
    slot.dead = true;
    const at = this.#slots.indexOf(slot);
    if (at >= 0) this.#slots.splice(at, 1);
    if (slot.active) {
      clearTimeout(slot.active.timer);
      slot.active.pending.reject(error);
      slot.active = undefined;
    }
    if (kill) void slot.ch.kill();
    // A worker that dies before it is ready would die again: fail the queue instead of respawning forever.
    if (!slot.ready) {
      for (const p of this.#queue.splice(0)) p.reject(new PluginRunError(`could not start a plugin worker: ${error.message}`, { cause: error }));
    }
    this.#pump();
  }
}
