// Creates the host element our UI renders into: a closed shadow root, so Lightning's CSS and ours do not mix and page scripts cannot read what we show.
import { ownHostAttribute } from '../selectors.js';

export interface ShadowHost {
  host: HTMLElement;
  root: ShadowRoot;
}

/** `feature` names our feature (e.g. "consent-badge"); it is the only attribute we set, and it is never PHI. */
export function createShadowHost(doc: Document, feature: string, css: string, inline = false): ShadowHost {
  const host = doc.createElement(inline ? 'span' : 'div');
  host.setAttribute(ownHostAttribute, feature);
  const root = host.attachShadow({ mode: 'closed' });
  const style = doc.createElement('style');
  style.textContent = css;
  root.append(style);
  return { host, root };
}
