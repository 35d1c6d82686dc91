// The options page for admins: connector URL and sign-in, then FHIR endpoints, Salesforce status, users, EHR origins and SMART app launch registrations.
import { useState } from 'preact/hooks';
import { messagingClient, send, sessionState } from '../api.js';
import type { Message } from '../messages.js';
import { mountPage, useSession } from '../ui/page-shell.js';
import { SignIn } from '../ui/sign-in.js';
import { errorText } from '../ui/use-call.js';
import { EhrOrigins, Endpoints, SalesforceConnection, Users } from './admin-sections.js';
import { SmartEhrs, type SmartAdminSend } from './smart-ehrs.js';

const client = messagingClient();
const smartAdmin: SmartAdminSend = (request) => send({ type: 'smart-admin', request } as Message) as never;

function ConnectorUrl({ current, onSaved }: { current: string | null; onSaved(): void }) {
  const [url, setUrl] = useState(current ?? '');
  const [note, setNote] = useState<string | null>(null);
  return (
    <form
      data-part="connector"
      onSubmit={async (e) => {
        e.preventDefault();
        try {
          await send({ type: 'settings/set-connector', url });
          setNote('Saved.');
          onSaved();
        } catch (err) {
          setNote(errorText(err));
        }
      }}
    >
      <label>Connector URL</label>
      <div class="row">
        <input name="connector-url" value={url} placeholder="https://outreach.example.org" onInput={(e) => setUrl(e.currentTarget.value)} style="flex:1" />
        <button type="submit" name="save-connector">
          Save
        </button>
      </div>
      {note && <div class="status">{note}</div>}
    </form>
  );
}

function Options() {
  const [session, setSession] = useSession();
  if (!session) return <div>Loading…</div>;
  const refresh = () => void sessionState().then(setSession);
  const admin = session.signedIn && session.user?.role === 'admin';
  return (
    <div style="max-width:720px">
      <h2>Secure Outreach · Options</h2>
      <section>
        <ConnectorUrl current={session.connectorUrl} onSaved={refresh} />
        <SignIn session={session} onChange={setSession} />
      </section>
      {admin && (
        <>
          <Endpoints client={client} />
          <SalesforceConnection client={client} />
          <Users client={client} />
          <EhrOrigins session={session} onChange={refresh} />
          <SmartEhrs send={smartAdmin} connectorUrl={session.connectorUrl} />
        </>
      )}
      {session.signedIn && !admin && <section>Admin settings need the admin role.</section>}
    </div>
  );
}

mountPage(() => <Options />);
