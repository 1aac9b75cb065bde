/** A counting semaphore: at most `size` holders at once, FIFO waiters. */
export class Slots {
  private used = 0;
  private readonly waiters: Array<() => void> = [];
  constructor(private size: number) {}

  resize(size: number): void {
    this.size = Math.max(1, size);
    while (this.used < this.size && this.waiters.length) {
      this.used++;
      this.waiters.shift()?.();
    }
  }

  async acquire(): Promise<() => void> {
    if (this.used < this.size) this.used++;
    else await new Promise<void>((resolve) => this.waiters.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.used--;
    };
  }

  get inUse(): number {
    return this.used;
  }
}
