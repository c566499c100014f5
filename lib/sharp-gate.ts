/**
 * libvips keeps one error buffer for the whole process, and sharp reads it when an operation fails but clears it when
 * any operation ends, failed or not. A failure among other operations can therefore carry no message ("Unknown error")
 * or another image's. Every sharp operation of this process runs through `withSharp`; `withSharpAlone` runs one with no
 * other in flight, so that what it reports is its own. Operations waiting to run alone go before new shared ones, and
 * one after another.
 */
let shared = 0;
let alone = false;
const waitingAlone: (() => void)[] = [];
const waitingShared: (() => void)[] = [];

export async function withSharp<T>(operation: () => Promise<T>): Promise<T> {
  if (alone || waitingAlone.length > 0) await new Promise<void>((start) => waitingShared.push(start));
  else shared++;
  try {
    return await operation();
  } finally {
    shared--;
    startWaiting();
  }
}

export async function withSharpAlone<T>(operation: () => Promise<T>): Promise<T> {
  if (alone || shared > 0 || waitingAlone.length > 0) await new Promise<void>((start) => waitingAlone.push(start));
  else alone = true;
  try {
    return await operation();
  } finally {
    alone = false;
    startWaiting();
  }
}

/** Hands the gate over when it is free: to the next operation waiting to run alone, else to every shared one waiting. */
function startWaiting(): void {
  if (alone || shared > 0) return;
  const next = waitingAlone.shift();
  if (next) {
    alone = true;
    next();
    return;
  }
  shared += waitingShared.length;
  for (const start of waitingShared.splice(0)) start();
}
