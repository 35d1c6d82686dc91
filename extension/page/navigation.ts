// Follows Lightning's single-page navigation: the Navigation API where the browser has it, else popstate plus a cheap URL check on DOM churn.
import { timedCallback } from './work-timer.js';

interface NavigationLike extends EventTarget {
  currentEntry: unknown;
}

/** Calls `onChange(url)` whenever the page URL changes without a reload. Returns a stop function. */
export function watchNavigation(win: Window, onChange: (url: string) => void): () => void {
  let last = win.location.href;
  const check = timedCallback(() => {
    const now = win.location.href;
    if (now === last) return;
    last = now;
    onChange(now);
  });
  // pushState from the page's world cannot be patched from the isolated world; the Navigation API reports it anyway.
  const navigation = (win as unknown as { navigation?: NavigationLike }).navigation;
  navigation?.addEventListener('currententrychange', check);
  win.addEventListener('popstate', check);
  let observer: MutationObserver | undefined;
  if (!navigation) {
    observer = new MutationObserver(check);
    observer.observe(win.document.documentElement, { childList: true, subtree: true });
  }
  return () => {
    navigation?.removeEventListener('currententrychange', check);
    win.removeEventListener('popstate', check);
    observer?.disconnect();
  };
}
