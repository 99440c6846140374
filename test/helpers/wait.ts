/**
 * Waiting for a condition instead of sleeping: tests poll what they wait for, with a deadline
 * that fails with a message naming it.
 */

/**
 * Resolves once `cond()` is true (polled every `everyMs`); rejects after `timeoutMs`.
 * @example await waitFor(async () => (await fs.stat(file)).size > 0, { what: 'the writer started' });
 */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  o: { timeoutMs?: number; everyMs?: number; what?: string } = {},
): Promise<void> {
  const deadline = Date.now() + (o.timeoutMs ?? 20_000);
  for (;;) {
    if (await Promise.resolve(cond()).catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${o.what ?? 'a condition'}`);
    await new Promise((r) => setTimeout(r, o.everyMs ?? 20));
  }
}
