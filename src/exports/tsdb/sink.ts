/**
 * The tsdb sink: records -> InfluxDB 1.x line protocol -> `POST /write` to
 * PIPELINE_TSDB_URL, into database `destRepoName` (created on first
 * delivery when missing). Decision 014.
 */
import { PermanentSinkError, RetryableSinkError, type DeliveryResult, type ExportBatch, type PreviewResult, type Sink, type SinkContext, type SinkKind } from '../shared/sink.ts';
import { InfluxClient } from './client.ts';
import { encodeRecords, LineEncoder, type Verdicts } from './encode.ts';
import { compileTsdbSpec, type TsdbPlan } from './spec.ts';

/**
 * Bounds of one write request. influxd parses a request into memory before
 * answering (default max-body-size 25 MB); 5,000 lines is InfluxDB's own
 * recommended batch and measured as fast as larger ones (decision 014).
 */
const MAX_LINES = 5000;
const MAX_BYTES = 4 << 20;

class TsdbSink implements Sink {
  private readonly client: InfluxClient;
  private readonly encoder: LineEncoder;
  private dbReady = false;

  constructor(private readonly plan: TsdbPlan, private readonly ctx: SinkContext) {
    this.client = new InfluxClient(ctx.config.tsdb);
    this.encoder = new LineEncoder(plan);
  }

  async deliver(batch: ExportBatch, signal: AbortSignal): Promise<DeliveryResult> {
    const out: Verdicts = { rejected: [], skipped: 0 };
    this.encoder.take(); // drops what a failed delivery left pending
    if (!this.dbReady) await this.ensureDatabase(signal);
    // Pipelined: the next request's records are decoded and converted while
    // influxd ingests the previous one (one request in flight, in order).
    // Records are converted from the stored lines (decoded only where the
    // fast path declines, as batch.points() would decode them), per request,
    // so the conversion overlaps the writes too.
    const { lines: stored, from, times } = batch;
    let inFlight: Promise<void> | undefined;
    for (let i = 0; i < stored.length;) {
      i = this.encoder.encodeStored(stored, this.ctx.schema, from, times, i, Math.min(stored.length, i + MAX_LINES), MAX_BYTES, out);
      const body = this.encoder.count > 0 ? this.encoder.take() : undefined;
      if (inFlight) await inFlight;
      inFlight = undefined;
      if (body === undefined) continue;
      inFlight = this.write(body, signal);
      inFlight.catch(() => undefined); // awaited above or below; marks the rejection handled meanwhile
    }
    if (inFlight) await inFlight;
    return { ackedThrough: from + stored.length, rejected: out.rejected };
  }

  private async write(body: Buffer, signal: AbortSignal): Promise<void> {
    if ((await this.client.write(this.plan.database, body, signal)) === 'ok') return;
    // Dropped since we created it (or never created: see ensureDatabase): create and try once more.
    this.dbReady = false;
    await this.ensureDatabase(signal);
    if ((await this.client.write(this.plan.database, body, signal)) === 'ok') return;
    throw new RetryableSinkError(`InfluxDB database "${this.plan.database}" does not exist and could not be created`);
  }

  private async ensureDatabase(signal: AbortSignal): Promise<void> {
    try {
      await this.client.createDatabase(this.plan.database, signal);
      this.ctx.log.debug({ export: this.ctx.exportName, database: this.plan.database }, 'tsdb database ready');
    } catch (err) {
      // A user without admin rights cannot CREATE DATABASE but may write to an existing one:
      // the write tells. A 400 here is about the name, which no retry fixes either.
      if (signal.aborted || !(err instanceof RetryableSinkError || err instanceof PermanentSinkError)) throw err;
      this.ctx.log.warn({ export: this.ctx.exportName, database: this.plan.database, error: err.message }, 'tsdb CREATE DATABASE failed; writing anyway');
    }
    this.dbReady = true;
  }

  async preview(batch: ExportBatch): Promise<PreviewResult> {
    const { lines, rejected, skipped } = encodeRecords(this.plan, batch.points(), batch.from, batch.times);
    return { rendered: { database: this.plan.database, precision: 'ns', lines, skipped }, rejected };
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

/** The `tsdb` export type. */
export const tsdbKind: SinkKind = {
  types: ['tsdb'],
  async validate(spec, ctx) {
    compileTsdbSpec(spec, ctx.repo.schema, ctx.config);
    return spec;
  },
  create(spec, ctx) {
    return new TsdbSink(compileTsdbSpec(spec, ctx.repo.schema, ctx.config), ctx);
  },
};
