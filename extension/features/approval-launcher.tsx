// Feature for EHR pages: a launcher that opens the clinician's approval queue in a closed shadow root.
import { render } from 'preact';
import { useState } from 'preact/hooks';
import type { ConnectorClient } from '../connector-client.js';
import { createShadowHost } from '../page/shadow-host.js';
import { timed } from '../page/work-timer.js';
import { ehr } from '../selectors.js';
import { ApprovalGate } from '../ui/approval-gate.js';
import { baseCss } from '../ui/theme.js';
import type { Feature } from './feature.js';

function Launcher({ client }: { client: ConnectorClient }) {
  const [open, setOpen] = useState(false);
  return (
    <>
      {open && (
        <div class="floating panel" role="dialog" aria-label="Secure Outreach approvals">
          <header>
            <span>Secure Outreach · Approvals</span>
            <button class="secondary" onClick={() => setOpen(false)} aria-label="Close">
              ×
            </button>
          </header>
          <section>
            <ApprovalGate client={client} />
          </section>
        </div>
      )}
      <button class="launcher" name="open-approvals" onClick={() => setOpen(!open)}>
        Outreach approvals
      </button>
    </>
  );
}

export const approvalLauncher: Feature = {
  name: 'approval-queue',
  applies: () => true,
  start({ document, client, signal }) {
    timed(() => {
      const { host, root } = createShadowHost(document, 'approval-queue', baseCss);
      (document.querySelector(ehr.mountPoint) ?? document.body).append(host);
      render(<Launcher client={client} />, root);
      signal.addEventListener('abort', () => {
        render(null, root);
        host.remove();
      });
    });
  },
};
