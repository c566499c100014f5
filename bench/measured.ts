/**
 * Runs `work` while sampling this process's resident memory; returns its result, the peak seen, and the wall and CPU
 * seconds it took (CPU of every thread of this process, libvips' included; not of other processes), and the part of
 * that CPU the kernel spent on its behalf.
 */
export async function measured<T>(work: () => Promise<T>): Promise<{ value: T; peakRss: number; seconds: number; cpuSeconds: number; kernelSeconds: number }> {
  let peakRss = process.memoryUsage.rss();
  const timer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 100);
  const started = performance.now();
  const cpu = process.cpuUsage();
  try {
    const value = await work();
    const used = process.cpuUsage(cpu);
    return { value, peakRss, seconds: (performance.now() - started) / 1000, cpuSeconds: (used.user + used.system) / 1e6, kernelSeconds: used.system / 1e6 };
  } finally {
    clearInterval(timer);
  }
}
