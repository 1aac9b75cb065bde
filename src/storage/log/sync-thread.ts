/**
 * fsyncs on threads of their own. Node's thread pool (4 threads by default)
 * also runs DuckDB's queries and file reads, so a few long transform runs
 * once queued every push's fdatasync behind them for seconds. Two worker
 * threads that do nothing but sync keep durable acknowledgements independent
 * of that load (docs/decisions/018-isolating-accounts.md).
 */
import { Worker } from 'node:worker_threads';

// Plain CommonJS, so the thread needs no TypeScript loader.
const SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
parentPort.on('message', (m) => {
  try {
    if (m.fd !== undefined) fs.fdatasyncSync(m.fd);
    else { const fd = fs.openSync(m.dir, 'r'); try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); } }
    parentPort.postMessage({ id: m.id });
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall } });
  }
});`;

/** Threads syncing at once: group commits of different logs overlap, two cores' worth. */
const THREADS = 2;

interface Reply {
  id: number;
  error?: { message: string; code?: string; errno?: number; syscall?: string };
}

interface SyncThread {
  worker: Worker;
  pending: Map<number, { resolve: () => void; reject: (e: Error) => void }>;
}

let threads: SyncThread[] = [];
let seq = 0;

function start(): SyncThread {
  const worker = new Worker(SOURCE, { eval: true });
  const t: SyncThread = { worker, pending: new Map() };
  worker.on('message', (r: Reply) => {
    const p = t.pending.get(r.id);
    if (!p) return;
    t.pending.delete(r.id);
    if (!r.error) return p.resolve();
    // Same shape as a failed fs call, so callers can read `code` (EIO, ENOSPC).
    p.reject(Object.assign(new Error(r.error.message), { code: r.error.code, errno: r.error.errno, syscall: r.error.syscall }));
  });
  const dead = (err: Error): void => {
    threads = threads.filter((x) => x !== t);
    for (const p of t.pending.values()) p.reject(err);
    t.pending.clear();
  };
  worker.on('error', dead);
  worker.on('exit', (code) => dead(new Error(`fsync thread exited with code ${code}`)));
  worker.unref(); // idle sync threads never keep the process alive
  return t;
}

function submit(msg: { fd: number } | { dir: string }): Promise<void> {
  while (threads.length < THREADS) threads.push(start());
  // The thread with the fewest syncs in flight.
  const t = threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  const id = ++seq;
  return new Promise<void>((resolve, reject) => {
    t.pending.set(id, { resolve, reject });
    t.worker.ref(); // a sync in flight must finish before the process may exit
    t.worker.postMessage({ id, ...msg });
  }).finally(() => {
    if (t.pending.size === 0) t.worker.unref();
  });
}

/** fdatasync(fd) on a sync thread. */
export function fdatasyncOnThread(fd: number): Promise<void> {
  return submit({ fd });
}

/** Opens `dir` and fsyncs it on a sync thread. */
export function fsyncDirOnThread(dir: string): Promise<void> {
  return submit({ dir });
}
