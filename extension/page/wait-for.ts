// Waits for an element that Lightning renders progressively: a MutationObserver with a time limit, never an endless poll.
import { timedCallback } from './work-timer.js';

export interface WaitOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Resolves with `find()`'s first non-null result, or null after the time limit or on abort. */
export function waitFor<T>(root: Node, find: () => T | null, options: WaitOptions = {}): Promise<T | null> {
  const first = find();
  if (first) return Promise.resolve(first);
  return new Promise((resolve) => {
    let done = false;
    const finish = (value: T | null) => {
      if (done) return;
      done = true;
      observer.disconnect();
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      resolve(value);
    };
    const observer = new MutationObserver(
      timedCallback(() => {
        const found = find();
        if (found) finish(found);
      }),
    );
    const onAbort = () => finish(null);
    const timer = setTimeout(() => finish(null), options.timeoutMs ?? 10_000);
    options.signal?.addEventListener('abort', onAbort);
    if (options.signal?.aborted) return finish(null);
    observer.observe(root, { childList: true, subtree: true });
  });
}
