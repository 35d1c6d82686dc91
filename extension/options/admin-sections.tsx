// The admin sections of the options page: FHIR endpoints (add, test, sync now), Salesforce status, users, and the EHR origins to grant.
import { useState } from 'preact/hooks';
import browser from 'webextension-polyfill';
import { send } from '../api.js';
import type { ConnectorClient } from '../connector-client.js';
import type { SessionState } from '../messages.js';
import { errorText, useLoad } from '../ui/use-call.js';
import { NoteLine, useActionNote, type Note } from './action-note.js';

export function Endpoints({ client }: { client: ConnectorClient }) {
  const [list, reload] = useLoad(() => client.call('listEndpoints', {}), []);
  const [form, setForm] = useState({ name: '', baseUrl: '', clientId: '' });
  const { note, act } = useActionNote(reload);
  return (
    <section>
      <h3>FHIR endpoints</h3>
      {list.state === 'error' && <NoteLine note={{ text: list.message, tone: 'error' }} />}
      {list.state === 'ready' && (
        <table>
          <tbody>
            {list.value.endpoints.map((e) => (
              <tr key={e.id}>
                <td>{e.name}</td>
                <td>{e.baseUrl}</td>
                <td>
                  {e.lastSyncStatus}
                  {e.lastSyncAt ? ` ${e.lastSyncAt.slice(0, 16)}` : ''}
                </td>
                <td class="row">
                  <button class="secondary" onClick={() => act(async () => {
                    const r = await client.call('testEndpoint', { params: { id: e.id } });
                    return r.ok ? `${e.name}: FHIR ${r.fhirVersion ?? '?'}, token ${r.tokenOk ? 'ok' : 'refused'}, ${Math.round(r.latencyMs)} ms` : `${e.name}: ${r.error}`;
                  })}>
                    Test
                  </button>
                  <button class="secondary" onClick={() => act(async () => `Sync started (${(await client.call('syncEndpoint', { params: { id: e.id } })).syncId})`)}>
                    Sync now
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form
        onSubmit={(ev) => {
          ev.preventDefault();
          void act(async () => `Added ${(await client.call('createEndpoint', { body: form })).name}`);
        }}
      >
        <label>Name</label>
        <input value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} />
        <label>FHIR base URL (https)</label>
        <input value={form.baseUrl} onInput={(e) => setForm({ ...form, baseUrl: e.currentTarget.value })} />
        <label>Client id</label>
        <input value={form.clientId} onInput={(e) => setForm({ ...form, clientId: e.currentTarget.value })} />
        <div class="row" style="margin-top:6px">
          <button type="submit">Add endpoint</button>
        </div>
      </form>
      <NoteLine note={note} />
    </section>
  );
}

export function SalesforceConnection({ client }: { client: ConnectorClient }) {
  const [status] = useLoad(() => client.call('salesforceStatus', {}), []);
  return (
    <section>
      <h3>Salesforce</h3>
      {status.state === 'error' && <NoteLine note={{ text: status.message, tone: 'error' }} />}
      {status.state === 'ready' &&
        (status.value.connected ? (
          <div>
            Connected to {status.value.instanceUrl} as {status.value.username}; last push {status.value.lastPushAt ?? 'never'}, last opt-out pull{' '}
            {status.value.lastOptOutPullAt ?? 'never'}.
          </div>
        ) : (
          <div>Not connected{status.value.error ? `: ${status.value.error}` : ''}. Run `outreach salesforce connect` on the connector.</div>
        ))}
    </section>
  );
}

export function Users({ client }: { client: ConnectorClient }) {
  const [list, reload] = useLoad(() => client.call('listUsers', {}), []);
  const [form, setForm] = useState({ username: '', password: '', role: 'marketer' as 'admin' | 'marketer' | 'clinician' });
  const { note, act } = useActionNote(reload);
  return (
    <section>
      <h3>Users</h3>
      {list.state === 'error' && <NoteLine note={{ text: list.message, tone: 'error' }} />}
      {list.state === 'ready' && (
        <table>
          <tbody>
            {list.value.users.map((u) => (
              <tr key={u.id}>
                <td>{u.username}</td>
                <td>{u.role}</td>
                <td>{u.disabled ? 'disabled' : 'active'}</td>
                <td>
                  <button class="secondary" onClick={() => act(async () => `${(await client.call('updateUser', { params: { id: u.id }, body: { disabled: !u.disabled } })).username} updated`)}>
                    {u.disabled ? 'Enable' : 'Disable'}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form
        onSubmit={(ev) => {
          ev.preventDefault();
          void act(async () => `Created ${(await client.call('createUser', { body: form })).username}`);
        }}
      >
        <label>User name</label>
        <input value={form.username} onInput={(e) => setForm({ ...form, username: e.currentTarget.value })} />
        <label>Initial password (12+ characters)</label>
        <input type="password" value={form.password} onInput={(e) => setForm({ ...form, password: e.currentTarget.value })} />
        <label>Role</label>
        <select value={form.role} onChange={(e) => setForm({ ...form, role: e.currentTarget.value as typeof form.role })}>
          <option value="marketer">marketer</option>
          <option value="clinician">clinician</option>
          <option value="admin">admin</option>
        </select>
        <div class="row" style="margin-top:6px">
          <button type="submit">Add user</button>
        </div>
      </form>
      <NoteLine note={note} />
    </section>
  );
}

/** Asks the browser for an EHR origin (an optional host permission, granted by the admin's click), then has the background register the EHR script there. */
export function EhrOrigins({ session, onChange }: { session: SessionState; onChange(): void }) {
  const [origin, setOrigin] = useState('');
  const [note, setNote] = useState<Note>(null);
  const apply = async (origins: string[]) => {
    const { registered } = await send({ type: 'ehr/origins-changed', origins });
    onChange();
    return registered;
  };
  const grant = async () => {
    setNote(null);
    let url: URL;
    try {
      url = new URL(origin.trim());
    } catch {
      setNote({ text: 'Enter an origin such as https://ehr.example.org', tone: 'error' });
      return;
    }
    try {
      // Must run in the click's user gesture: the browser asks the admin to confirm.
      const granted = await browser.permissions.request({ origins: [`${url.origin}/*`] });
      if (!granted) {
        setNote({ text: 'The browser did not grant access to that origin.', tone: 'error' });
        return;
      }
      const registered = await apply([...new Set([...session.ehrOrigins, url.origin])]);
      setNote({ text: `The approval queue now runs on ${registered.length} EHR origin(s).` });
      setOrigin('');
    } catch (err) {
      setNote({ text: errorText(err), tone: 'error' });
    }
  };
  const remove = async (o: string) => {
    await browser.permissions.remove({ origins: [`${o}/*`] }).catch(() => false);
    await apply(session.ehrOrigins.filter((x) => x !== o));
  };
  return (
    <section>
      <h3>EHR origins</h3>
      <ul data-part="ehr-origins">
        {session.ehrOrigins.map((o) => (
          <li key={o}>
            {o}{' '}
            <button class="secondary" onClick={() => remove(o)}>
              Remove
            </button>
          </li>
        ))}
      </ul>
      <div class="row">
        <input name="ehr-origin" placeholder="https://ehr.example.org" value={origin} onInput={(e) => setOrigin(e.currentTarget.value)} style="flex:1" />
        <button name="grant-ehr" onClick={grant}>
          Grant
        </button>
      </div>
      <NoteLine note={note} />
    </section>
  );
}
