/** The request/answer loop shared by the log store's worker threads (queries and writes). */
import { parentPort } from 'node:worker_threads';
import { ApiError } from '../errors.ts';

/** An answer: the value, or the error (with its E-code when it is an ApiError). */
export type WorkerReply<V> = { id: number; ok: true; value: V } | { id: number; ok: false; code?: string; message: string };

/** Answers every message from the parent thread with `handle`'s value or error, tagged with the message's id. */
export function serveRequests<M extends { id: number }, V>(handle: (m: M) => V): void {
  parentPort!.on('message', (m: M) => {
    let reply: WorkerReply<V>;
    try {
      reply = { id: m.id, ok: true, value: handle(m) };
    } catch (err) {
      reply = err instanceof ApiError
        ? { id: m.id, ok: false, code: err.code, message: err.message }
        : { id: m.id, ok: false, message: (err as Error).message ?? String(err) };
    }
    parentPort!.postMessage(reply);
  });
}
