// Runs the content-script features for each page view: starts those that apply, and aborts them all when the SPA navigates.
import { options } from 'preact';
import type { ConnectorClient } from '../connector-client.js';
import type { Feature } from '../features/feature.js';
import { watchNavigation } from '../page/navigation.js';
import { recordRoute } from '../page/record-route.js';
import { timed } from '../page/work-timer.js';

/** Preact re-renders are our work too: time each batch. */
export function timePreactRenders(): void {
  options.debounceRendering = (callback) => void Promise.resolve().then(() => timed(callback));
}

/** Starts the features for the current view and follows navigation; `restart()` re-runs the view (e.g. after sign-in). */
export function runFeatures(win: Window, features: readonly Feature[], client: ConnectorClient): { stop(): void; restart(): void } {
  let view: AbortController | null = null;
  const startView = (href: string) => {
    view?.abort();
    const controller = new AbortController();
    view = controller;
    const url = new URL(href);
    const record = recordRoute(url);
    for (const feature of features) {
      if (!feature.applies({ url, record })) continue;
      // A feature that fails must not take the others down, and must say nothing about page content.
      Promise.resolve()
        .then(() => feature.start({ document: win.document, url, record, client, signal: controller.signal }))
        .catch(() => undefined);
    }
  };
  timed(() => startView(win.location.href));
  const stop = watchNavigation(win, startView);
  return {
    stop: () => {
      stop();
      view?.abort();
    },
    restart: () => timed(() => startView(win.location.href)),
  };
}

