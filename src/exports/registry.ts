import { httpKind } from './http/index.ts';
import { KODO } from './kodo/index.ts';
import { logdbSink } from './logdb/sink.ts';
import { mongoKind } from './mongo/sink.ts';
import type { SinkKind } from './shared/sink.ts';
import { tsdbKind } from './tsdb/sink.ts';

/** Every sink kind the server supports; each sink folder adds its kind here. */
export const SINK_KINDS: readonly SinkKind[] = [
  httpKind,
  KODO,
  logdbSink,
  tsdbKind,
  mongoKind,
];

/** The kind for an export `type`, matched case-insensitively; undefined when unknown. */
export function sinkKind(type: string): SinkKind | undefined {
  const t = type.toLowerCase();
  return SINK_KINDS.find((k) => k.types.includes(t));
}
