// The toolbar popup: connection status, sign in, sign out, and shortcuts to the side panel (clinicians approve) and options.
import browser from 'webextension-polyfill';
import { mountPage, useSession } from '../ui/page-shell.js';
import { SignIn } from '../ui/sign-in.js';

function Popup() {
  const [session, setSession] = useSession();
  const openSidePanel = async () => {
    const chromeApi = (globalThis as { chrome?: { sidePanel?: { open(o: { windowId: number }): Promise<void> } } }).chrome;
    const win = await browser.windows.getCurrent();
    if (chromeApi?.sidePanel && win.id !== undefined) await chromeApi.sidePanel.open({ windowId: win.id });
    else await (browser as unknown as { sidebarAction?: { open(): Promise<void> } }).sidebarAction?.open();
  };
  return (
    <div style="width:300px">
      <h3>Secure Outreach</h3>
      {session === null ? (
        <div>Loading…</div>
      ) : (
        <>
          <div class="status" data-part="connector">
            Connector: {session.connectorUrl ?? 'not configured'}
          </div>
          <SignIn session={session} onChange={setSession} />
        </>
      )}
      <div class="row" style="margin-top:10px">
        {session?.user?.role === 'clinician' && (
          <button class="secondary" name="open-side-panel" onClick={openSidePanel}>
            Approval queue
          </button>
        )}
        <button class="secondary" onClick={() => browser.runtime.openOptionsPage()}>
          Options
        </button>
      </div>
    </div>
  );
}

mountPage(() => <Popup />);
