// Accounts for the main-thread time our content scripts spend, as performance measures on the page's timeline (the e2e budget reads them).
export const workMeasure = 'secure-outreach:work';

/** Runs `fn` and records its duration as one `secure-outreach:work` measure. */
export function timed<T>(fn: () => T): T {
  const start = performance.now();
  try {
    return fn();
  } finally {
    performance.measure(workMeasure, { start, end: performance.now() });
  }
}

/** Wraps a callback (event handler, observer) so that each run is timed. */
export function timedCallback<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
  return (...args) => timed(() => fn(...args));
}
