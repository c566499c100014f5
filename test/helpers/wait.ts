/** Polls until `poll` returns a value (not undefined), or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, poll: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await poll();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
