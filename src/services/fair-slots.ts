/**
 * A counting semaphore shared by several accounts: at most `size` holders
 * at once, and when a slot frees, the waiter of the account served longest
 * ago goes first (each account's own waiters in order). One account with a
 * thousand runs due therefore delays another account's run by at most one
 * run, not by its whole backlog.
 */
export class FairSlots {
  private used = 0;
  /** Waiters per account, in arrival order. */
  private readonly waiting = new Map<string, Array<() => void>>();
  /** When each account last got a slot (a sequence number); accounts never served count as 0. */
  private readonly served = new Map<string, number>();
  private seq = 0;

  constructor(private readonly size: number) {}

  async acquire(account: string): Promise<() => void> {
    if (this.used < this.size && this.waiting.size === 0) {
      this.used++;
      this.served.set(account, ++this.seq);
    } else {
      await new Promise<void>((resolve) => {
        const q = this.waiting.get(account);
        if (q) q.push(resolve);
        else this.waiting.set(account, [resolve]);
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used--;
      this.next();
    };
  }

  /** Hands free slots to waiters, the account served longest ago first. */
  private next(): void {
    while (this.used < this.size && this.waiting.size > 0) {
      let pick: string | undefined;
      let oldest = Infinity;
      for (const account of this.waiting.keys()) {
        const at = this.served.get(account) ?? 0;
        if (at < oldest) {
          oldest = at;
          pick = account;
        }
      }
      const q = this.waiting.get(pick!)!;
      const resolve = q.shift()!;
      if (q.length === 0) this.waiting.delete(pick!);
      this.used++;
      this.served.set(pick!, ++this.seq);
      resolve();
    }
    // Accounts with nothing running or waiting need no turn record.
    if (this.used === 0 && this.waiting.size === 0) this.served.clear();
  }

  get inUse(): number {
    return this.used;
  }

  /** Waiters over all accounts. */
  get queued(): number {
    let n = 0;
    for (const q of this.waiting.values()) n += q.length;
    return n;
  }
}
