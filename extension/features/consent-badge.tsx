// Feature: the consent badge next to the e-mail field of Contact and Lead record pages (closed shadow root, looked up by CRM id, never by e-mail).
import { render } from 'preact';
import { ConnectorCallError } from '../connector-error.js';
import { createShadowHost } from '../page/shadow-host.js';
import { waitFor } from '../page/wait-for.js';
import { timed } from '../page/work-timer.js';
import { lightning } from '../selectors.js';
import { ConsentBadge, type BadgeState } from '../ui/consent-badge.js';
import { baseCss } from '../ui/theme.js';
import type { Feature } from './feature.js';

/** The e-mail field of the visible record page only (hidden pages left by navigation stay in the DOM). */
export function findEmailField(doc: Document): Element | null {
  const page = doc.querySelector(lightning.activePage);
  if (!page) return null;
  for (const selector of lightning.emailField) {
    const field = page.querySelector(selector);
    if (field?.querySelector(lightning.emailLink)) return field;
  }
  return null;
}

export const consentBadge: Feature = {
  name: 'consent-badge',
  applies: ({ record }) => record !== null,
  async start({ document, record, client, signal }) {
    const field = await waitFor(document.body, () => findEmailField(document), { signal, timeoutMs: 15_000 });
    if (!field || signal.aborted) return;
    const { host, root } = timed(() => {
      const made = createShadowHost(document, 'consent-badge', baseCss, true);
      field.after(made.host);
      return made;
    });
    const show = (state: BadgeState) => timed(() => render(<ConsentBadge state={state} />, root));
    signal.addEventListener('abort', () => {
      render(null, root);
      host.remove();
    });
    show({ kind: 'loading' });
    try {
      const summary = await client.call('lookupPatient', { query: { crmId: record!.recordId } });
      if (!signal.aborted) show({ kind: 'summary', summary });
    } catch (err) {
      if (signal.aborted) return;
      const code = err instanceof ConnectorCallError ? err.code : '';
      show(code === 'UNAUTHENTICATED' || code === 'SESSION_EXPIRED' ? { kind: 'signed-out' } : { kind: 'error', message: err instanceof Error ? err.message : 'error' });
    }
  },
};
