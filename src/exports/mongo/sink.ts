/**
 * The mongo sink: each batch becomes one unordered bulkWrite through the
 * official driver (which splits it by the server's maxWriteBatchSize).
 * Decision 017.
 *
 * INSERT is idempotent across redelivery: a record's `_id` is derived from
 * the export and the record's source offset, so a batch written again after
 * a crash meets duplicate-key errors, which count as done. UPDATE and UPSERT
 * are at-least-once: a redelivered `$inc` or `$push` applies twice.
 */
import { EJSON } from 'bson';
import { MongoBulkWriteError, MongoClient, MongoError, MongoServerError, type AnyBulkWriteOperation, type Collection } from 'mongodb';
import { decodeLine } from '../../ingest/points.ts';
import type { Point } from '../../ingest/types.ts';
import { OutboundPolicy } from '../shared/outbound.ts';
import { PermanentSinkError, RetryableSinkError, type DeliveryResult, type ExportBatch, type PreviewResult, type Rejected, type Sink, type SinkContext, type SinkKind } from '../shared/sink.ts';
import { operation, Unfit } from './convert.ts';
import { fastInsert, type FastOp } from './fast.ts';
import { compileMongoSpec, type MongoPlan } from './spec.ts';

/** Whether new sinks build INSERT documents straight from stored lines (fast.ts); off only in the bench comparing the paths. */
export const mongoPaths = { fast: true };

/**
 * Server error codes that say "try again later" (the driver's retryable
 * write codes, plus auth failures: an operator fixes those, and the data
 * must not turn into dead letters meanwhile).
 */
const RETRYABLE_CODES = new Set([6, 7, 13, 18, 50, 63, 64, 89, 91, 134, 150, 189, 262, 9001, 10107, 11600, 11601, 11602, 13435, 13436, 16500]);
const DUPLICATE_KEY = 11000;
/** Records per bulkWrite: small enough that building the next one overlaps the write, large enough to batch. */
const CHUNK = 10000;

function retryable(err: unknown): boolean {
  if (!(err instanceof MongoError)) return false;
  if (err.hasErrorLabel('RetryableWriteError') || err.hasErrorLabel('TransientTransactionError')) return true;
  // A server error always carries its code; without one, the driver wrapped a
  // connection failure (a closed socket mid-bulkWrite arrives that way).
  if (err instanceof MongoServerError) return typeof err.code !== 'number' || RETRYABLE_CODES.has(err.code);
  // Network errors, server selection and pool timeouts, a closed client: all transient from here.
  return true;
}

interface Built {
  ops: AnyBulkWriteOperation[];
  /** Source offset of ops[i]. */
  offsets: number[];
  /** ops[i] is an INSERT with a derived _id. */
  derived: boolean[];
  rejected: Rejected[];
}

class MongoSink implements Sink {
  private readonly client: MongoClient;
  private readonly coll: Collection;
  private readonly idPrefix: string;
  /** Documents straight from stored lines, when the plan allows it. */
  private readonly fast: FastOp | undefined;

  constructor(private readonly plan: MongoPlan, private readonly ctx: SinkContext) {
    const policy = new OutboundPolicy(ctx.config.exportOutbound);
    this.client = new MongoClient(plan.uri, {
      appName: 'pipeline-server',
      maxPoolSize: 4,
      serverSelectionTimeoutMS: 10_000,
      connectTimeoutMS: 10_000,
      socketTimeoutMS: 120_000,
      ignoreUndefined: true,
      // Every connection's host name goes through the operator's outbound policy.
      lookup: policy.lookup,
    } as ConstructorParameters<typeof MongoClient>[1]);
    this.coll = this.client.db(plan.dbName).collection(plan.collName);
    this.fast = mongoPaths.fast ? fastInsert(plan, ctx.schema) : undefined;
    // Connect while the engine reads the first batch; a failure shows up again (and is classified) in deliver.
    this.client.connect().catch(() => undefined);
    // Unique per export incarnation: a repo deleted and created again restarts its offsets.
    const created = Date.parse(ctx.repo.createTime);
    this.idPrefix = `${ctx.account}/${ctx.repo.name}/${ctx.exportName}/${Number.isNaN(created) ? 0 : created.toString(36)}:`;
  }

  /** Operations for records [start, end) of a batch; `opAt(i)` is record i's (throws Unfit). */
  private build(opAt: (i: number) => { op: AnyBulkWriteOperation; derived: boolean }, from: number, start: number, end: number): Built {
    const out: Built = { ops: [], offsets: [], derived: [], rejected: [] };
    for (let i = start; i < end; i++) {
      const offset = from + i;
      try {
        const { op, derived } = opAt(i);
        out.ops.push(op);
        out.offsets.push(offset);
        out.derived.push(derived);
      } catch (err) {
        if (!(err instanceof Unfit)) throw err;
        out.rejected.push({ offset, error: err.message });
      }
    }
    return out;
  }

  private readonly ids = { derivedId: (offset: number): string => this.idPrefix + offset };

  async deliver(batch: ExportBatch, signal: AbortSignal): Promise<DeliveryResult> {
    const rejected: Rejected[] = [];
    const { lines, from } = batch;
    const schema = this.ctx.schema;
    // Decoded per record as batch.points() would, chunk by chunk, so that
    // building the next chunk overlaps the server writing the previous one.
    // Chunks are written in order, one at a time: a later $set lands last.
    const fast = this.fast;
    const opAt = (i: number): { op: AnyBulkWriteOperation; derived: boolean } =>
      fast?.(lines[i] as string, from + i, this.ids) ?? operation(this.plan, this.ctx.repo.schema, decodeLine(lines[i] as string, schema), from + i, this.ids);
    let inFlight: Promise<void> | undefined;
    for (let i = 0; i < lines.length; i += CHUNK) {
      const built = this.build(opAt, from, i, Math.min(lines.length, i + CHUNK));
      rejected.push(...built.rejected);
      if (inFlight) await inFlight;
      if (signal.aborted) throw signal.reason;
      inFlight = built.ops.length ? this.write(built, rejected) : undefined;
      inFlight?.catch(() => undefined); // awaited above or below; marks the rejection handled meanwhile
    }
    if (inFlight) await inFlight;
    rejected.sort((a, b) => a.offset - b.offset);
    return { ackedThrough: from + lines.length, rejected };
  }

  /** One unordered bulkWrite; per-document refusals are added to `rejected`. */
  private async write(built: Built, rejected: Rejected[]): Promise<void> {
    try {
      await this.coll.bulkWrite(built.ops, { ordered: false });
    } catch (err) {
      const errors = err instanceof MongoBulkWriteError ? (Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors]) : [];
      // No per-document errors: the command itself failed (the driver wraps that
      // in a MongoBulkWriteError too), or the write concern did.
      if (errors.length === 0 || (err instanceof MongoBulkWriteError && err.writeConcernError)) {
        if (retryable(err)) throw new RetryableSinkError(`MongoDB: ${(err as Error).message}`, { cause: err });
        // Refused for good (e.g. a document over 16 MB): the engine bisects to the record.
        throw new PermanentSinkError(`MongoDB refused the batch: ${(err as Error).message}`, { cause: err });
      }
      for (const we of errors) {
        if (we.code === DUPLICATE_KEY && built.derived[we.index]) continue; // written by an earlier delivery
        if (RETRYABLE_CODES.has(we.code)) throw new RetryableSinkError(`MongoDB: ${we.errmsg ?? `code ${we.code}`}`, { cause: err });
        const offset = built.offsets[we.index];
        if (offset !== undefined) rejected.push({ offset, error: `MongoDB refused the document (code ${we.code}): ${we.errmsg ?? ''}`.slice(0, 1000) });
      }
    }
  }

  async preview(batch: ExportBatch): Promise<PreviewResult> {
    const points = batch.points();
    const built = this.build((i) => operation(this.plan, this.ctx.repo.schema, points[i] as Point, batch.from + i, this.ids), batch.from, 0, points.length);
    return {
      rendered: {
        database: this.plan.dbName,
        collection: this.plan.collName,
        mode: this.plan.mode,
        operations: EJSON.serialize(built.ops, { relaxed: true }),
      },
      rejected: built.rejected,
    };
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

/** The `mongo` export type (`mongodb` too, as the reference's examples write it). */
export const mongoKind: SinkKind = {
  types: ['mongo', 'mongodb'],
  async validate(spec, ctx) {
    compileMongoSpec(spec, ctx.repo.schema, new OutboundPolicy(ctx.config.exportOutbound));
    return spec;
  },
  create(spec, ctx) {
    return new MongoSink(compileMongoSpec(spec, ctx.repo.schema, new OutboundPolicy(ctx.config.exportOutbound)), ctx);
  },
};
