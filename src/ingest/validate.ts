/**
 * One push body's validation, the same on the main thread and in a parse
 * worker: UTF-8 check, decode, parse against the schema, and what to append
 * (the body as is when the validated lines are exactly its lines).
 */
import { isUtf8 } from 'node:buffer';
import { ApiError } from '../errors.ts';
import { parsePoints, type CompiledSchema, type ParseOptions } from './points.ts';

/** What a validated body appends: its own bytes (`verbatim`) or the re-joined lines. */
export interface ValidatedBody {
  count: number;
  /** The bytes to append (count lines joined by '\n'): a slice of the body when verbatim. */
  payload: Buffer;
  verbatim: boolean;
}

/** Validates one (already gunzipped) body; throws ApiError like parsePoints. */
export function validateBody(raw: Buffer, schema: CompiledSchema, opts: ParseOptions): ValidatedBody {
  if (!isUtf8(raw)) throw new ApiError('E18007', 'body is not valid UTF-8');
  const text = raw.toString('utf8');
  const lines = parsePoints(text, schema, opts);
  const verbatim = opts.tags ? undefined : verbatimPayload(text, raw, lines);
  if (verbatim) return { count: lines.length, payload: verbatim, verbatim: true };
  return { count: lines.length, payload: Buffer.from(lines.join('\n'), 'utf8'), verbatim: false };
}

/**
 * The body bytes as a log payload, when the lines are exactly the body's lines:
 * lines are in-order slices of `text`, so equal total length means nothing was
 * dropped or changed. Only a trailing newline is cut.
 */
export function verbatimPayload(text: string, raw: Buffer, lines: readonly string[]): Buffer | undefined {
  const end = text.endsWith('\n') ? text.length - 1 : text.length;
  let total = lines.length - 1;
  for (const l of lines) total += l.length;
  if (total !== end) return undefined;
  return end === text.length ? raw : raw.subarray(0, raw.length - 1);
}
