/**
 * Parse worker thread: validates large push bodies off the main thread so
 * other requests (and /health) are not held while a 16 MB body is parsed.
 * Compiled schemas are cached by repo key and schema version.
 */
import { parentPort } from 'node:worker_threads';
import { ApiError } from '../errors.ts';
import { compileSchema, type CompiledSchema } from './points.ts';
import type { EscapeMode } from './escapes.ts';
import type { SchemaField } from './types.ts';
import { validateBody } from './validate.ts';

/** A job: the body and what it is validated against. */
export interface ParseJob {
  id: number;
  body: Uint8Array;
  schemaKey: string;
  schemaVersion: string;
  schema: SchemaField[];
  /** The repo's escape mode (options.unescapeLine). */
  mode: EscapeMode;
  tags?: string;
  maxValueBytes?: number;
}

/** The answer: the count and the payload to append (a slice of the body when it is stored as is). */
export type ParseReply =
  | { id: number; count: number; payload: Uint8Array }
  | { id: number; error: { code: string; message: string } }
  | { id: number; crash: string };

const schemas = new Map<string, { version: string; compiled: CompiledSchema }>();
const MAX_CACHED = 1000;

function compiled(job: ParseJob): CompiledSchema {
  const hit = schemas.get(job.schemaKey);
  if (hit && hit.version === job.schemaVersion) return hit.compiled;
  if (schemas.size >= MAX_CACHED) schemas.clear();
  const c = compileSchema(job.schema, job.mode);
  schemas.set(job.schemaKey, { version: job.schemaVersion, compiled: c });
  return c;
}

parentPort!.on('message', (job: ParseJob) => {
  try {
    const raw = Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength);
    const r = validateBody(raw, compiled(job), { tags: job.tags, maxValueBytes: job.maxValueBytes });
    // Hand the bytes back without a copy, unless they live in Node's small shared buffer pool.
    const transfer = r.payload.buffer.byteLength >= 64 * 1024 ? [r.payload.buffer as ArrayBuffer] : [];
    parentPort!.postMessage({ id: job.id, count: r.count, payload: r.payload } satisfies ParseReply, transfer);
  } catch (err) {
    if (err instanceof ApiError) parentPort!.postMessage({ id: job.id, error: { code: err.code, message: err.message } } satisfies ParseReply);
    else parentPort!.postMessage({ id: job.id, crash: String((err as Error)?.stack ?? err) } satisfies ParseReply);
  }
});
