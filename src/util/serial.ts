/**
 * One-at-a-time execution: tasks run in the order they were queued, each after the previous one
 * settled (a failure does not stop the queue; it reaches only its own caller).
 *
 * @example
 * const q = new SerialQueue();
 * await q.run(() => commit());
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs `fn` after every task queued before it has settled; resolves or rejects as `fn` does. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn, fn);
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Resolves when every task queued so far has settled. */
  async idle(): Promise<void> {
    await this.tail;
  }
}
