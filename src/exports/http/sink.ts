import { errors as undiciErrors, type Agent } from 'undici';
import { jsonLine } from '../shared/json.ts';
import { OutboundDeniedError, OutboundPolicy } from '../shared/outbound.ts';
import { PermanentSinkError, RetryableSinkError, type DeliveryResult, type ExportBatch, type PreviewResult, type Sink, type SinkContext } from '../shared/sink.ts';
import type { HttpSpec } from './spec.ts';

/** The reference's fixed request size. */
export const MAX_RECORDS_PER_REQUEST = 20_000;
const TIMEOUT_MS = 30_000;

/** Statuses that blame the records themselves: the engine bisects the batch and dead-letters what stays refused. */
const PERMANENT = new Set([400, 413, 415, 422]);

function retryAfter(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  const secs = Number(s);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(s);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** A delivery the receiver did not take and retrying alone will not fix (404, 401, a denied address): the engine reports error and retries with backoff. */
export class HttpTargetError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HttpTargetError';
  }
}

/**
 * POSTs batches to one URL over keep-alive connections: text bodies are the
 * stored lines verbatim (they already are the push format), json bodies one
 * object per line. Any 2xx acknowledges the whole request.
 */
export class HttpSink implements Sink {
  private readonly agent: Agent;
  private closed = false;

  constructor(
    private readonly spec: HttpSpec,
    private readonly ctx: SinkContext,
  ) {
    const policy = new OutboundPolicy(ctx.config.exportOutbound);
    this.agent = policy.agent({ connections: 4, keepAliveTimeout: 30_000, headersTimeout: TIMEOUT_MS, bodyTimeout: TIMEOUT_MS });
  }

  private render(lines: readonly string[], b: ExportBatch, start: number): { body: string; contentType: string } {
    if (this.spec.format === 'text') return { body: lines.join('\n'), contentType: 'text/plain' };
    const points = b.points();
    const out: string[] = new Array<string>(lines.length);
    for (let i = 0; i < lines.length; i++) out[i] = jsonLine(points[start + i] as Record<string, unknown>);
    return { body: out.join('\n'), contentType: 'application/json' };
  }

  async deliver(b: ExportBatch, signal: AbortSignal): Promise<DeliveryResult> {
    for (let start = 0; start < b.lines.length; start += MAX_RECORDS_PER_REQUEST) {
      const lines = b.lines.length <= MAX_RECORDS_PER_REQUEST ? b.lines : b.lines.slice(start, start + MAX_RECORDS_PER_REQUEST);
      await this.post(this.render(lines, b, start), signal);
    }
    return { ackedThrough: b.from + b.lines.length, rejected: [] };
  }

  private async post(req: { body: string; contentType: string }, signal: AbortSignal): Promise<void> {
    let status: number;
    let headers: Record<string, string | string[] | undefined>;
    let text = '';
    try {
      const res = await this.agent.request({
        origin: this.spec.url.origin,
        path: this.spec.url.pathname + this.spec.url.search,
        method: 'POST',
        headers: { 'content-type': req.contentType },
        body: req.body,
        signal,
      });
      status = res.statusCode;
      headers = res.headers;
      if (status >= 200 && status < 300) {
        await res.body.dump();
        return;
      }
      text = await head(res.body, 300);
    } catch (err) {
      if (signal.aborted) throw err;
      const denied = findDenied(err);
      if (denied) throw new HttpTargetError(denied.message, { cause: err });
      // A certificate the system does not trust will not fix itself by retrying soon: report it as a target error.
      if (TLS_CERT_CODES.has((err as NodeJS.ErrnoException).code ?? '')) throw new HttpTargetError(`POST ${this.spec.url.href}: ${(err as Error).message}`, { cause: err });
      if (err instanceof undiciErrors.UndiciError || (err as NodeJS.ErrnoException).code) {
        throw new RetryableSinkError(`POST ${this.spec.url.href}: ${(err as Error).message}`, { cause: err });
      }
      throw err;
    }
    const what = `POST ${this.spec.url.href} answered ${status}${text ? `: ${text}` : ''}`;
    if (status === 408 || status === 429 || status >= 500) throw new RetryableSinkError(what, { retryAfterMs: retryAfter(headers['retry-after']) });
    if (PERMANENT.has(status)) throw new PermanentSinkError(what);
    throw new HttpTargetError(what);
  }

  async preview(b: ExportBatch): Promise<PreviewResult> {
    const { body, contentType } = this.render(b.lines, b, 0);
    return { rendered: { method: 'POST', url: this.spec.url.href, contentType, body }, rejected: [] };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.agent.close().catch(() => this.agent.destroy());
  }
}

const TLS_CERT_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The first `max` characters of a response body; the rest is discarded without buffering it. */
async function head(body: AsyncIterable<Buffer> & { destroy(): unknown }, max: number): Promise<string> {
  let text = '';
  try {
    for await (const chunk of body) {
      text += chunk.toString('utf8', 0, Math.min(chunk.length, max - text.length));
      if (text.length >= max) break;
    }
  } catch {
    // an error body that breaks off still leaves the status to report
  }
  body.destroy();
  return text;
}

function findDenied(err: unknown): OutboundDeniedError | undefined {
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as Error).cause, i++) {
    if (e instanceof OutboundDeniedError) return e;
  }
  return undefined;
}
