// Re-runs the content script's view when the background says the session changed (sign-in, sign-out, idle).
import browser from 'webextension-polyfill';

/** Any other message is ignored; this one carries nothing but its type. */
export function followSession(restart: () => void): void {
  browser.runtime.onMessage.addListener((message: unknown) => {
    if ((message as { type?: unknown } | null)?.type === 'session/changed') restart();
    return undefined;
  });
}
