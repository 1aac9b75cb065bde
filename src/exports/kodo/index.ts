/**
 * The kodo (object storage) export kind: files in a bucket of the server's
 * object store (local folders or an S3-compatible endpoint). See
 * docs/exports.md#kodo and docs/decisions/013-kodo-export-and-object-store.md.
 */
import { checkBucket } from '../../objectstore/index.ts';
import type { SinkKind } from '../shared/sink.ts';
import { outColumns } from './columns.ts';
import { KodoSink } from './sink.ts';
import { parseKodoSpec } from './spec.ts';

export const KODO: SinkKind = {
  types: ['kodo'],
  async validate(spec, ctx) {
    const parsed = parseKodoSpec(spec);
    outColumns(ctx.repo.schema, parsed.fields);
    await checkBucket(ctx.config, ctx.account, parsed.bucket);
    return spec;
  },
  create(spec, ctx) {
    return new KodoSink(parseKodoSpec(spec), ctx);
  },
};
