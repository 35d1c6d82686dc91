// Feature: the Secure Outreach launcher on Lightning pages, opening the compose panel in a closed shadow root.
import { render } from 'preact';
import { useState } from 'preact/hooks';
import type { ConnectorClient } from '../connector-client.js';
import type { RecordRoute } from '../page/record-route.js';
import { createShadowHost } from '../page/shadow-host.js';
import { timed } from '../page/work-timer.js';
import { ComposePanel } from '../ui/compose-panel.js';
import { baseCss } from '../ui/theme.js';
import type { Feature } from './feature.js';

function Launcher({ client, record }: { client: ConnectorClient; record: RecordRoute | null }) {
  const [open, setOpen] = useState(false);
  return (
    <>
      {open && (
        <div class="floating">
          <ComposePanel client={client} record={record} onClose={() => setOpen(false)} />
        </div>
      )}
      <button class="launcher" name="open-compose" onClick={() => setOpen(!open)}>
        Secure Outreach
      </button>
    </>
  );
}

export const composePanel: Feature = {
  name: 'compose-panel',
  applies: ({ url }) => url.pathname.startsWith('/lightning/'),
  start({ document, record, client, signal }) {
    timed(() => {
      const { host, root } = createShadowHost(document, 'compose-panel', baseCss);
      document.body.append(host);
      render(<Launcher client={client} record={record} />, root);
      signal.addEventListener('abort', () => {
        render(null, root);
        host.remove();
      });
    });
  },
};
