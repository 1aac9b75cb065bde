/**
 * The InfluxDB 1.x HTTP API as the tsdb sink needs it: `POST /write` of
 * line protocol with an explicit precision, and `CREATE DATABASE` through
 * `/query`. Keep-alive connections (undici Pool); credentials go in a Basic
 * auth header, never in the URL (URLs end up in logs).
 *
 * Failures are classified for the engine: a 400 (unparsable line, field type
 * conflict, partial write) or 413 is the batch's fault -> PermanentSinkError,
 * which the engine bisects down to the records to dead-letter. Everything
 * else (connection errors, timeouts, 5xx, 429, and auth or path errors that
 * an operator must fix) is retried: dead-lettering good data because the
 * server is misconfigured would be worse than waiting.
 */
import { Pool } from 'undici';
import { PermanentSinkError, RetryableSinkError } from '../shared/sink.ts';

export interface InfluxTarget {
  /** Base URL, e.g. http://127.0.0.1:8086 or https://proxy/influx */
  url: string;
  user: string;
  password: string;
}

/** InfluxQL double-quoted identifier. */
export function quoteIdent(s: string): string {
  return `"${s.replace(/[\\"]/g, '\\$&')}"`;
}

const MAX_ERROR_TEXT = 500;

export class InfluxClient {
  private readonly pool: Pool;
  private readonly base: string;
  private readonly origin: string;
  private readonly headers: Record<string, string>;
  private closed = false;

  constructor(target: InfluxTarget) {
    const u = new URL(target.url);
    this.base = u.pathname.replace(/\/+$/, '');
    this.origin = u.origin;
    this.pool = new Pool(u.origin, {
      connections: 4,
      keepAliveTimeout: 30_000,
      connectTimeout: 10_000,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
    this.headers = {};
    if (target.user) this.headers.authorization = `Basic ${Buffer.from(`${target.user}:${target.password}`).toString('base64')}`;
  }

  /** `CREATE DATABASE` (a no-op when it exists). */
  async createDatabase(db: string, signal?: AbortSignal): Promise<void> {
    const body = new URLSearchParams({ q: `CREATE DATABASE ${quoteIdent(db)}` }).toString();
    const { status, text } = await this.send('/query', body, 'application/x-www-form-urlencoded', signal);
    if (status >= 200 && status < 300) {
      const err = (JSON.parse(text) as { results?: Array<{ error?: string }> }).results?.[0]?.error;
      if (err) throw new RetryableSinkError(`InfluxDB refused CREATE DATABASE ${quoteIdent(db)}: ${err}`);
      return;
    }
    throw classify('CREATE DATABASE', status, text);
  }

  /**
   * Writes line protocol (timestamps in nanoseconds). Resolves on 204;
   * answers 'no-database' when influxd says the database does not exist.
   */
  async write(db: string, body: string | Buffer, signal?: AbortSignal): Promise<'ok' | 'no-database'> {
    const path = `/write?db=${encodeURIComponent(db)}&precision=ns`;
    const { status, text, retryAfter } = await this.send(path, body, 'text/plain; charset=utf-8', signal);
    if (status >= 200 && status < 300) return 'ok';
    if (status === 404 && text.includes('database not found')) return 'no-database';
    throw classify('write', status, text, retryAfter);
  }

  private async send(path: string, body: string | Buffer, contentType: string, signal?: AbortSignal): Promise<{ status: number; text: string; retryAfter: string | undefined }> {
    if (this.closed) throw new RetryableSinkError('the InfluxDB client is closed');
    try {
      const res = await this.pool.request({
        method: 'POST',
        path: this.base + path,
        body,
        headers: { ...this.headers, 'content-type': contentType },
        signal,
      });
      const text = await res.body.text();
      const ra = res.headers['retry-after'];
      return { status: res.statusCode, text, retryAfter: typeof ra === 'string' ? ra : undefined };
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new RetryableSinkError(`InfluxDB at ${this.origin} is unreachable: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Closes the keep-alive connections. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.close();
  }
}

function classify(what: string, status: number, text: string, retryAfter?: string): Error {
  let detail = text.trim();
  try {
    detail = (JSON.parse(text) as { error?: string }).error ?? detail;
  } catch {
    // not JSON: a proxy's page
  }
  const msg = `InfluxDB answered ${status} to ${what}: ${detail.slice(0, MAX_ERROR_TEXT)}`;
  if (status === 400 || status === 413) return new PermanentSinkError(msg);
  const seconds = retryAfter !== undefined ? Number(retryAfter) : NaN;
  const hint = status === 401 || status === 403 ? ' (check PIPELINE_TSDB_USER and PIPELINE_TSDB_PASSWORD)' : '';
  return new RetryableSinkError(msg + hint, Number.isFinite(seconds) ? { retryAfterMs: seconds * 1000 } : undefined);
}
