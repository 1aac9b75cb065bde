/**
 * Sandbox host for JavaScript plugins: the entry of a child process
 * (default) or worker thread started by the plugin pool with a heap limit
 * and --experimental-vm-modules. Handles one request at a time and keeps
 * compiled plugins so that steady-state runs pay only for the data. The
 * pool kills this host on timeout, so nothing here polices running time.
 */
import { parentPort } from 'node:worker_threads';
import { compilePlugin, SandboxInvalidError, type PluginForm, type SandboxedPlugin } from './js-sandbox.ts';

/** Main thread -> worker. `code` is omitted when the main thread believes the worker has `key` cached. */
export interface WorkerRequest {
  id: number;
  op: 'compile' | 'run';
  key: string;
  code?: string;
  input?: string;
  big?: boolean;
  /** Most output points of this run (see SandboxedPlugin.run). */
  maxOut?: number;
}

/** Worker -> main thread. `missing`: the worker no longer has `key` and needs the code again. */
export type WorkerReply =
  | { type: 'ready' }
  | { type: 'done'; id: number; form: PluginForm; output?: string }
  | { type: 'failed'; id: number; kind: 'invalid' | 'run' | 'missing'; message: string };

// Enough for the plugins of all busy transforms; each entry is one context.
const CACHE_LIMIT = 32;
const cache = new Map<string, SandboxedPlugin>();

async function handle(req: WorkerRequest): Promise<WorkerReply> {
  let plugin = cache.get(req.key);
  if (plugin) {
    cache.delete(req.key); // re-insert below: Map order doubles as LRU order
  } else {
    if (req.code === undefined) return { type: 'failed', id: req.id, kind: 'missing', message: 'plugin not cached' };
    try {
      plugin = await compilePlugin(req.code, req.key);
    } catch (err) {
      const message = err instanceof Error ? err.message : 'plugin failed to compile';
      return { type: 'failed', id: req.id, kind: err instanceof SandboxInvalidError ? 'invalid' : 'run', message };
    }
  }
  cache.set(req.key, plugin);
  if (cache.size > CACHE_LIMIT) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
  if (req.op === 'compile') return { type: 'done', id: req.id, form: plugin.form };
  try {
    const output = await plugin.run(req.input ?? '[]', req.big === true, req.maxOut);
    return { type: 'done', id: req.id, form: plugin.form, output };
  } catch (err) {
    return { type: 'failed', id: req.id, kind: 'run', message: err instanceof Error ? err.message : 'plugin failed' };
  }
}

// A plugin may leave a rejected promise unhandled; by default that would
// crash the host. The reason is plugin-made, so it is not even inspected.
process.on('unhandledRejection', () => {});

if (parentPort) {
  const port = parentPort;
  port.on('message', (req: WorkerRequest) => {
    void handle(req).then((reply) => port.postMessage(reply));
  });
  port.postMessage({ type: 'ready' } satisfies WorkerReply);
} else if (process.send) {
  const send = process.send.bind(process);
  process.on('message', (req: WorkerRequest) => {
    void handle(req).then((reply) => send(reply));
  });
  // Without the server there is nothing to do: do not outlive it.
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready' } satisfies WorkerReply);
}
