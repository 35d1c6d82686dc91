// Mounts an extension page (popup, options, side panel): loads the session state, applies the stylesheet, re-renders when the session changes.
import { render, type ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import browser from 'webextension-polyfill';
import { sessionState } from '../api.js';
import type { SessionState } from '../messages.js';
import { baseCss } from './theme.js';

export function useSession(): [SessionState | null, (s: SessionState) => void] {
  const [session, setSession] = useState<SessionState | null>(null);
  useEffect(() => {
    const refresh = () => void sessionState().then(setSession, () => setSession(null));
    refresh();
    // The session changes in storage.session when another page signs in or out, or on idle.
    const onChanged = (_: unknown, area: string) => {
      if (area === 'session' || area === 'local') refresh();
    };
    browser.storage.onChanged.addListener(onChanged);
    return () => browser.storage.onChanged.removeListener(onChanged);
  }, []);
  return [session, setSession];
}

export function mountPage(view: () => ComponentChildren): void {
  const style = document.createElement('style');
  style.textContent = `${baseCss}\nbody { margin: 0; padding: 12px; font-size: 13px; color: #181818; }`;
  document.head.append(style);
  function Page() {
    return <>{view()}</>;
  }
  render(<Page />, document.getElementById('app')!);
}

export type { ComponentChildren };
