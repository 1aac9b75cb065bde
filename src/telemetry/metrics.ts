import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Refreshes scrape-time metrics from the state they mirror; run before each exposition. */
export type Collector = () => void | Promise<void>;

/** Label value of requests no route matched (unknown paths must not become label values). */
export const UNMATCHED_ROUTE = '(unmatched)';

/** A counter whose value is read from state at scrape time rather than incremented where it changes. */
export function mirroredCounter<L extends string>(reg: Registry, name: string, help: string, labelNames: readonly L[]): Counter<L> {
  return new Counter({ name, help, labelNames, registers: [reg] });
}

/** A gauge set from state at scrape time. */
export function mirroredGauge<L extends string>(reg: Registry, name: string, help: string, labelNames: readonly L[]): Gauge<L> {
  return new Gauge({ name, help, labelNames, registers: [reg] });
}

/**
 * Node's process metrics (CPU, memory, event-loop lag, GC) describe the
 * process, not an app, and prom-client cannot stop their event-loop monitor
 * and GC observer: one registry for them per process, created on first use
 * and merged into each app's exposition.
 */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * The server's metrics: one prom-client Registry per app (never the global
 * one, so several apps in one process, as in tests, keep their own), with
 * Node's process metrics, the few counters that change on hot paths (HTTP
 * requests, accepted pushes), and collectors that read existing state
 * (transform, export and offline status) when /metrics is scraped.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly collectors: Collector[] = [];
  /** Children of the request counter and histogram by "route method class", so a request does no label hashing. */
  private readonly httpChildren = new Map<string, { count: { inc(): void }; seconds: { observe(v: number): void } }>();
  private readonly ingestChildren = new Map<string, { points: { inc(v: number): void }; bytes: { inc(v: number): void } }>();

  private readonly httpRequests: Counter<'route' | 'method' | 'status'>;
  private readonly httpSeconds: Histogram<'route' | 'method' | 'status'>;
  private readonly ingestPoints: Counter<'account' | 'repo'>;
  private readonly ingestBytes: Counter<'account' | 'repo'>;
  private readonly pushRejected: Counter<'code'>;

  constructor() {
    const reg = this.registry;
    const http = ['route', 'method', 'status'] as const;
    this.httpRequests = new Counter({ name: 'pipeline_http_requests_total', help: 'HTTP requests answered, by route pattern, method and status class (2xx, 4xx, ...)', labelNames: http, registers: [reg] });
    this.httpSeconds = new Histogram({
      name: 'pipeline_http_request_duration_seconds', help: 'Time from request received to response sent, by route pattern, method and status class',
      labelNames: http, buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [reg],
    });
    const repo = ['account', 'repo'] as const;
    this.ingestPoints = new Counter({ name: 'pipeline_ingest_points_total', help: 'Points accepted by data push (durably appended), per repo', labelNames: repo, registers: [reg] });
    this.ingestBytes = new Counter({ name: 'pipeline_ingest_bytes_total', help: 'Bytes of accepted push bodies after gzip decompression, per repo', labelNames: repo, registers: [reg] });
    this.pushRejected = new Counter({ name: 'pipeline_ingest_rejected_total', help: 'Data pushes refused, by error code (E18xxx, or the HTTP status when the answer has no code)', labelNames: ['code'], registers: [reg] });
  }

  /** Counts one answered request; `route` is the route pattern (never the path), `seconds` its duration. */
  request(route: string, method: string, statusCode: number, seconds: number): void {
    const status = `${Math.floor(statusCode / 100)}xx`;
    const k = `${route} ${method} ${status}`;
    let c = this.httpChildren.get(k);
    if (!c) {
      const labels = { route, method, status };
      c = { count: this.httpRequests.labels(labels), seconds: this.httpSeconds.labels(labels) };
      this.httpChildren.set(k, c);
    }
    c.count.inc();
    c.seconds.observe(seconds);
  }

  /** Counts one accepted push: one increment per request, whatever its size. */
  pushed(account: string, repo: string, points: number, bytes: number): void {
    const k = `${account}\u0000${repo}`;
    let c = this.ingestChildren.get(k);
    if (!c) {
      c = { points: this.ingestPoints.labels({ account, repo }), bytes: this.ingestBytes.labels({ account, repo }) };
      this.ingestChildren.set(k, c);
    }
    c.points.inc(points);
    c.bytes.inc(bytes);
  }

  /** A deleted repo's ingest series go, so names of deleted repos do not pile up. */
  repoDeleted(account: string, repo: string): void {
    if (!this.ingestChildren.delete(`${account}\u0000${repo}`)) return;
    this.ingestPoints.remove({ account, repo });
    this.ingestBytes.remove({ account, repo });
  }

  /** Counts one refused data push by its error code. */
  pushRefused(code: string): void {
    this.pushRejected.inc({ code });
  }

  /** Adds a collector run before each scrape (it resets and sets its own metrics). */
  collect(fn: Collector): void {
    this.collectors.push(fn);
  }

  /** Runs the collectors, then renders the registry in the Prometheus text format. */
  async scrape(): Promise<string> {
    for (const fn of this.collectors) await fn();
    return (await processMetrics().metrics()) + (await this.registry.metrics());
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
