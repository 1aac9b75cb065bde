import { decodeLine } from '../../ingest/points.ts';
import type { CompiledSchema } from '../../ingest/compiled.ts';
import type { Point } from '../../ingest/types.ts';
import type { ExportBatch } from './sink.ts';

/** Upper bounds of one batch read from the log (memory per export stays near two of these). */
export interface BatchLimits {
  /** Most points per batch. */
  points: number;
  /** Most UTF-16 code units of line text per batch (about bytes for ASCII data). */
  bytes: number;
}

/**
 * Builds a batch over stored lines; points are decoded only when a sink asks
 * (the http text format sends the lines verbatim and never decodes).
 */
export function makeBatch(from: number, lines: readonly string[], times: readonly number[], schema: CompiledSchema): ExportBatch {
  let decoded: Point[] | undefined;
  return {
    from,
    lines,
    times,
    points: () => (decoded ??= lines.map((l) => decodeLine(l, schema))),
  };
}

/** The first `n` records of a batch (for bisection). */
export function sliceBatch(b: ExportBatch, start: number, end: number, schema: CompiledSchema): ExportBatch {
  return makeBatch(b.from + start, b.lines.slice(start, end), b.times.slice(start, end), schema);
}

/**
 * How many of `lines` fit the byte cap (at least one, so an oversized single
 * point still moves; the sink decides whether it can take it).
 */
export function fitBytes(lines: readonly string[], maxBytes: number): number {
  let total = 0;
  for (let i = 0; i < lines.length; i++) {
    total += (lines[i] as string).length + 1;
    if (total > maxBytes && i > 0) return i;
  }
  return lines.length;
}

/** Total characters of `lines` (about their UTF-8 bytes for mostly-ASCII data). */
export function lineChars(lines: readonly string[]): number {
  let total = 0;
  for (const l of lines) total += l.length;
  return total;
}
