/**
 * JavaScript plugins: an uploaded ES module run over each batch of points in
 * a pool of sandboxed workers (child processes by default). See docs/plugins.md for the contract and
 * docs/decisions/004-plugin-runtimes.md for why it is built this way.
 */
import { createHash } from 'node:crypto';
import type { Point } from '../ingest/types.ts';
import { PluginInvalidError, PluginRunError } from './errors.ts';
import type { Isolation } from './js-channel.ts';
import { JsWorkerPool, type PoolJob } from './js-pool.ts';
import type { PluginForm } from './js-sandbox.ts';
import { decodeOutput, pointsToJson, type OutputField } from './output.ts';

export { PluginInvalidError, PluginMemoryError, PluginRunError, PluginTimeoutError, PluginUnavailableError } from './errors.ts';
export type { OutputField } from './output.ts';
export type { Isolation } from './js-channel.ts';

/** Limits for {@link JsPluginRuntime}. */
export interface JsRuntimeOptions {
  /** Worker threads in the pool (started on demand). */
  workers: number;
  /** Longest a worker may spend on one message (one chunk, or the whole batch for `batch` plugins). */
  timeoutMs: number;
  /** Heap limit of each worker (V8 old generation), shared by the plugin and the points it holds. */
  memoryMb: number;
  /**
   * `process` (default): each worker is a child process, so even a plugin
   * that crashes V8 only takes its own worker down. `thread`: worker threads,
   * lighter, but some out-of-memory paths abort the whole server
   * (docs/decisions/004-plugin-runtimes.md); only for trusted plugins.
   */
  isolation?: Isolation;
}

// Per-point plugins are split into chunks so all workers share a big batch
// and a worker's heap holds a bounded number of points. Below MIN_CHUNK the
// message round trip costs more than the parallelism gains.
const MIN_CHUNK = 1_000;
const MAX_CHUNK = 10_000;
const FORM_CACHE_LIMIT = 1_024;

/** Runs JavaScript plugins (ES modules) in a pool of sandboxed workers. */
export class JsPluginRuntime {
  readonly #pool: JsWorkerPool;
  readonly #workers: number;
  readonly #forms = new Map<string, PluginForm>();

  constructor(opts: JsRuntimeOptions) {
    if (!(opts.workers >= 1) || !(opts.timeoutMs > 0) || !(opts.memoryMb >= 16)) {
      throw new RangeError('JsPluginRuntime needs workers >= 1, timeoutMs > 0 and memoryMb >= 16');
    }
    this.#workers = Math.floor(opts.workers);
    const isolation = opts.isolation ?? 'process';
    this.#pool = new JsWorkerPool({ workers: this.#workers, timeoutMs: opts.timeoutMs, memoryMb: opts.memoryMb, isolation });
  }

  /**
   * Compiles the module in the sandbox (running its top-level code once) and
   * checks that it exports a default function or `batch`.
   * @throws PluginInvalidError with a message fit for the uploader.
   */
  async verify(code: string): Promise<void> {
    const job: PoolJob = { op: 'compile', key: `verify:${digest(code)}`, code, label: 'plugin' };
    try {
      await this.#pool.submit(job);
    } catch (err) {
      if (err instanceof PluginInvalidError) throw err;
      // Timeouts and memory kills while loading are properties of the module itself.
      const message = err instanceof Error ? err.message : String(err);
      throw new PluginInvalidError(`plugin could not be loaded: ${message}`, { cause: err });
    }
  }

  /**
   * Runs a plugin over points and enforces the declared output fields.
   * Output order follows input order. An empty input returns [] without
   * calling the plugin.
   * @param pluginId cache key and the name used in error messages.
   * @param maxOut most output points: a worker whose output has more fails
   *   the run before serialising it, and so do all parts together.
   * @throws PluginInvalidError if the code does not load; PluginRunError
   *   (or its PluginTimeoutError / PluginMemoryError subclasses) if the run fails.
   */
  async run(pluginId: string, code: string, points: Point[], output: OutputField[], maxOut?: number): Promise<Point[]> {
    if (points.length === 0) return [];
    const key = `${pluginId}:${digest(code)}`;
    const label = `plugin "${pluginId}"`;
    let form = this.#forms.get(key);
    if (form === undefined) {
      // Learn the form first: only per-point plugins may be split across workers.
      form = (await this.#pool.submit({ op: 'compile', key, code, label })).form;
      if (this.#forms.size >= FORM_CACHE_LIMIT) this.#forms.clear();
      this.#forms.set(key, form);
    }
    const chunks = form === 'batch' ? [points] : split(points, this.#workers);
    let failed = false;
    const cancelled = (): boolean => failed;
    const parts = chunks.map((chunk) => {
      const { json, big } = pointsToJson(chunk);
      const job: PoolJob = { op: 'run', key, code, label, input: json, big, cancelled, maxOut };
      return this.#pool
        .submit(job)
        .then((r) => {
          if (r.output === undefined) throw new PluginRunError(`${label} produced no output`);
          return decodeOutput(r.output, output, label);
        })
        .catch((err: unknown) => {
          failed = true;
          throw err;
        });
    });
    const results = await Promise.all(parts);
    if (results.length === 1 && results[0]) return results[0];
    const total = results.reduce((n, part) => n + part.length, 0);
    if (maxOut !== undefined && total > maxOut) throw new PluginRunError(`${label}: output limit: the plugin returned ${total} points, over the limit of ${maxOut} points per run`);
    const all: Point[] = [];
    for (const part of results) for (const p of part) all.push(p);
    return all;
  }

  /** Terminates the workers. Idempotent; later runs fail with PluginRunError. */
  close(): Promise<void> {
    return this.#pool.close();
  }
}

function split(points: Point[], workers: number): Point[][] {
  const size = Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, Math.ceil(points.length / workers)));
  if (points.length <= size) return [points];
  const chunks: Point[][] = [];
  for (let i = 0; i < points.length; i += size) chunks.push(points.slice(i, i + size));
  return chunks;
}

function digest(code: string): string {
  return createHash('sha256').update(code).digest('hex').slice(0, 20);
}
