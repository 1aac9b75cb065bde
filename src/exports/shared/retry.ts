/** Retry timing of failed deliveries: exponential backoff with full jitter, capped. */
export interface BackoffOptions {
  /** Delay scale of the first retry (ms). */
  minMs: number;
  /** Largest delay (ms). */
  maxMs: number;
  /** Random source in [0, 1); injected in tests. */
  random?: () => number;
}

/**
 * Delay before retry number `attempt` (1 = first retry): a random value in
 * [base/2, base] where base = min * 2^(attempt-1) capped at max. Half of the
 * delay is jitter so many exports failing together do not retry in lockstep,
 * the other half keeps the delay growing. A server's Retry-After wins when
 * it asks for longer (capped at max).
 */
export function backoffDelay(attempt: number, opts: BackoffOptions, retryAfterMs?: number): number {
  const rnd = opts.random ?? Math.random;
  const base = Math.min(opts.maxMs, opts.minMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  const delay = Math.round(base / 2 + (base / 2) * rnd());
  return retryAfterMs !== undefined && retryAfterMs > delay ? Math.min(opts.maxMs, retryAfterMs) : delay;
}

/** Timers of the engine; tests inject a fake clock. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or at once when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    }),
};
