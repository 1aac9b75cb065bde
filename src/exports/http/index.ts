import { OutboundPolicy } from '../shared/outbound.ts';
import type { SinkKind } from '../shared/sink.ts';
import { HttpSink } from './sink.ts';
import { checkTarget, parseHttpSpec } from './spec.ts';

/** The http sink: POST batches to a receiver (official-extensions 1.7). */
export const httpKind: SinkKind = {
  types: ['http'],
  async validate(spec, ctx) {
    const parsed = parseHttpSpec(spec);
    checkTarget(parsed.url, new OutboundPolicy(ctx.config.exportOutbound));
    return spec;
  },
  create(spec, ctx) {
    return new HttpSink(parseHttpSpec(spec), ctx);
  },
};
