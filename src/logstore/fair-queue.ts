/**
 * Per-account waiting lists served round-robin, shared by the query pool
 * (pool.ts) and the writer threads (writer.ts): an account runs at most
 * `perAccount` jobs at once and keeps at most `queuePerAccount` more waiting
 * (the caller answers E8113 beyond), so no account can hold the threads or
 * the memory of queued bodies for the others.
 */
export class FairQueue<P> {
  /** Waiting jobs per account; Map order is the round-robin order. */
  private readonly waiting = new Map<string, P[]>();
  private readonly running = new Map<string, number>();

  constructor(readonly perAccount: number, public queuePerAccount: number) {}

  /** True when the account has as many waiting as allowed and runs as many as allowed. */
  full(account: string): boolean {
    return this.queued(account).length >= this.queuePerAccount && this.runs(account) >= this.perAccount;
  }

  /** The account's waiting jobs, oldest first. */
  queued(account: string): readonly P[] {
    return this.waiting.get(account) ?? [];
  }

  /** Jobs waiting, over all accounts. */
  get size(): number {
    let n = 0;
    for (const q of this.waiting.values()) n += q.length;
    return n;
  }

  runs(account: string): number {
    return this.running.get(account) ?? 0;
  }

  push(account: string, p: P): void {
    const q = this.waiting.get(account) ?? [];
    q.push(p);
    this.waiting.set(account, q);
  }

  /**
   * Takes the next job, round-robin over the accounts that may run one more,
   * and counts it as running. `pick` chooses which of an account's waiting
   * jobs may start (index, or -1 for none now); by default the oldest.
   */
  take(pick: (queue: readonly P[]) => number = () => 0): { account: string; job: P } | undefined {
    for (const [account, queue] of this.waiting) {
      if (this.runs(account) >= this.perAccount) continue;
      const i = pick(queue);
      if (i < 0) continue;
      const [job] = queue.splice(i, 1) as [P];
      // Move the account to the end of the round.
      this.waiting.delete(account);
      if (queue.length > 0) this.waiting.set(account, queue);
      this.running.set(account, this.runs(account) + 1);
      return { account, job };
    }
    return undefined;
  }

  /** A job taken by take() finished (answered, failed or abandoned). */
  done(account: string): void {
    const n = this.runs(account) - 1;
    if (n > 0) this.running.set(account, n);
    else this.running.delete(account);
  }

  /** Removes and returns every waiting job (close). */
  clear(): P[] {
    const all = [...this.waiting.values()].flat();
    this.waiting.clear();
    return all;
  }
}
