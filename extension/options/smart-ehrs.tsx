// The options page's SMART section: register an EHR for app launch (iss, client id, redirect URI, auto-provision), edit it (frame origins too), disable it after a confirmation or enable it, and link its practitioners to clinician accounts.
import { useState } from 'preact/hooks';
import type { PractitionerLink, SmartAdminRequest, SmartAdminResult, SmartEhr } from '../background/smart-admin.js';
import { useLoad } from '../ui/use-call.js';
import { NoteLine, useActionNote } from './action-note.js';

/** Sends one SMART admin request through the background worker. */
export type SmartAdminSend = <R extends SmartAdminRequest>(request: R) => Promise<SmartAdminResult<R>>;

/** The connector's redirect endpoint for an EHR registration: where the EHR sends the browser back after sign-in. */
export const defaultRedirectUri = (connectorUrl: string | null) => (connectorUrl ? `${connectorUrl}/smart/callback` : '');

function PractitionerLinks({ ehr, send }: { ehr: SmartEhr; send: SmartAdminSend }) {
  const [links, reload] = useLoad(() => send({ op: 'list-links', ehrId: ehr.id }), [ehr.id]);
  const [form, setForm] = useState({ practitioner: '', username: '' });
  const { note, act } = useActionNote(reload);
  return (
    <div data-part="practitioner-links" data-ehr={ehr.id}>
      <h4>Practitioners of {ehr.name}</h4>
      {links.state === 'error' && <NoteLine note={{ text: links.message, tone: 'error' }} />}
      {links.state === 'ready' && links.value.links.length === 0 && <div>No practitioner is linked yet{ehr.autoProvision ? ' (new ones get a clinician account at first launch)' : ''}.</div>}
      {links.state === 'ready' && links.value.links.length > 0 && (
        <table>
          <tbody>
            {links.value.links.map((l: PractitionerLink) => (
              <tr key={l.practitioner} data-link={l.practitioner}>
                <td>{l.practitioner}</td>
                <td>
                  {l.username} ({l.role}){l.provisioned ? ' · provisioned at launch' : ''}
                </td>
                <td>
                  <button
                    class="secondary"
                    name="unlink-practitioner"
                    onClick={() =>
                      act(async () => {
                        await send({ op: 'unlink', ehrId: ehr.id, practitioner: l.practitioner });
                        return `Unlinked ${l.practitioner}.`;
                      })
                    }
                  >
                    Unlink
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
          void act(async () => {
            const link = await send({ op: 'link', ehrId: ehr.id, link: { practitioner: form.practitioner.trim(), username: form.username.trim() } });
            setForm({ practitioner: '', username: '' });
            return `Linked ${link.practitioner} to ${link.username}.`;
          });
        }}
      >
        <div class="row">
          <input name="practitioner" placeholder="Practitioner/123" value={form.practitioner} onInput={(e) => setForm({ ...form, practitioner: e.currentTarget.value })} style="flex:1" />
          <input name="practitioner-username" placeholder="clinician user name" value={form.username} onInput={(e) => setForm({ ...form, username: e.currentTarget.value })} style="flex:1" />
          <button type="submit" name="link-practitioner" disabled={!form.practitioner.trim() || !form.username.trim()}>
            Link
          </button>
        </div>
      </form>
      <NoteLine note={note} />
    </div>
  );
}

type EditForm = { name: string; clientId: string; redirectUri: string; frameOrigins: string; autoProvision: boolean };
type EditChanges = Omit<EditForm, 'frameOrigins'> & { frameOrigins: string[] };

const isLoopbackHost = (host: string) => host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);

/**
 * The frame origins an admin typed (one a line or comma-separated) as origins, or an error naming the first entry that
 * is not one: https, scheme://host[:port] with no path, query or credentials (plain http only on loopback, as the
 * connector allows for tests and the demo). Checked here so that a typo is named before anything is sent.
 */
export function parseFrameOrigins(text: string): { origins: string[] } | { error: string } {
  const origins: string[] = [];
  for (const entry of text.split(/[\s,]+/).filter(Boolean)) {
    let url: URL | null = null;
    try {
      url = new URL(entry);
    } catch {
      url = null;
    }
    const ok =
      url !== null &&
      (url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname))) &&
      !url.username && !url.password && url.pathname === '/' && !/[?#]/.test(entry);
    if (!ok) return { error: `frameOrigins: "${entry}" is not an https origin (https://host[:port], no path).` };
    if (!origins.includes(url!.origin)) origins.push(url!.origin);
  }
  return { origins };
}

/** The edit form of one registration: every field an admin fixes but the iss, which is what the registration is. */
function EditEhr({ ehr, save, cancel }: { ehr: SmartEhr; save: (form: EditForm) => void; cancel: () => void }) {
  const [form, setForm] = useState<EditForm>({
    name: ehr.name, clientId: ehr.clientId, redirectUri: ehr.redirectUri, frameOrigins: ehr.frameOrigins.join('\n'), autoProvision: ehr.autoProvision,
  });
  return (
    <form
      data-part="edit-ehr"
      data-ehr={ehr.id}
      onSubmit={(ev) => {
        ev.preventDefault();
        save({ name: form.name.trim(), clientId: form.clientId.trim(), redirectUri: form.redirectUri.trim(), frameOrigins: form.frameOrigins, autoProvision: form.autoProvision });
      }}
    >
      <h4>Edit {ehr.name}</h4>
      <div class="status">iss {ehr.iss} (register the EHR again to change it)</div>
      <label>EHR name</label>
      <input name="smart-edit-name" value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} />
      <label>Client id (issued by the EHR)</label>
      <input name="smart-edit-client-id" value={form.clientId} onInput={(e) => setForm({ ...form, clientId: e.currentTarget.value })} />
      <label>Redirect URI (registered at the EHR)</label>
      <input name="smart-edit-redirect-uri" value={form.redirectUri} onInput={(e) => setForm({ ...form, redirectUri: e.currentTarget.value })} />
      <label>Origins that may frame the approval app (one a line or comma-separated; empty: the origin of the iss)</label>
      <textarea
        name="smart-edit-frame-origins"
        placeholder="https://ehr.example.org"
        value={form.frameOrigins}
        onInput={(e) => setForm({ ...form, frameOrigins: e.currentTarget.value })}
      />
      <label>
        <input
          type="checkbox"
          name="smart-edit-auto-provision"
          checked={form.autoProvision}
          onChange={(e) => setForm({ ...form, autoProvision: e.currentTarget.checked })}
          style="width:auto"
        />{' '}
        Give an unlinked practitioner of this EHR a clinician account at first launch
      </label>
      <div class="row" style="margin-top:6px">
        <button type="submit" name="save-ehr" disabled={!form.name.trim() || !form.clientId.trim() || !form.redirectUri.trim()}>
          Save
        </button>
        <button type="button" class="secondary" name="cancel-edit-ehr" onClick={cancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** Registered EHRs (each can be edited, disabled or enabled), the registration form, and the practitioner links of the EHR the admin opens. */
export function SmartEhrs({ send, connectorUrl }: { send: SmartAdminSend; connectorUrl: string | null }) {
  const [list, reload] = useLoad(() => send({ op: 'list-ehrs' }), []);
  const empty = { name: '', iss: '', clientId: '', redirectUri: defaultRedirectUri(connectorUrl), autoProvision: false };
  const [form, setForm] = useState(empty);
  const [open, setOpen] = useState<string | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  // The EHR whose Disable awaits its confirmation: disabling ends that EHR's open app sessions for good.
  const [confirmingDisable, setConfirmingDisable] = useState<string | null>(null);
  const { note, act } = useActionNote(reload);
  const save = (id: string, form: EditForm) =>
    act(async () => {
      const parsed = parseFrameOrigins(form.frameOrigins);
      if ('error' in parsed) throw new Error(parsed.error);
      const changes: EditChanges = { ...form, frameOrigins: parsed.origins };
      const ehr = await send({ op: 'update-ehr', ehrId: id, changes });
      setEditing(null);
      return `Saved ${ehr.name} (${ehr.iss}).`;
    });
  const setDisabled = (e: SmartEhr, disabled: boolean) =>
    act(async () => {
      setConfirmingDisable(null);
      const ehr = await send({ op: 'update-ehr', ehrId: e.id, changes: { disabled } });
      return disabled ? `Disabled ${ehr.name}: it can no longer launch the app, and its open app sessions ended.` : `Enabled ${ehr.name}: it may launch the app again.`;
    });
  const register = () =>
    act(async () => {
      const ehr = await send({
        op: 'register-ehr',
        ehr: { name: form.name.trim(), iss: form.iss.trim(), clientId: form.clientId.trim(), redirectUri: form.redirectUri.trim(), autoProvision: form.autoProvision },
      });
      setForm(empty);
      setOpen(ehr.id);
      return `Registered ${ehr.name} (${ehr.iss}) for app launch.`;
    });
  const ehrs = list.state === 'ready' ? list.value.ehrs : [];
  const opened = ehrs.find((e) => e.id === open);
  const edited = ehrs.find((e) => e.id === editing);
  return (
    <section data-part="smart-ehrs" data-loaded={list.state === 'loading' ? undefined : ''}>
      <h3>SMART app launch</h3>
      <div class="status">EHRs that may launch the approval app, and the practitioners who approve as clinicians.</div>
      {list.state === 'error' && <NoteLine note={{ text: list.message, tone: 'error' }} />}
      {ehrs.length > 0 && (
        <table>
          <tbody>
            {ehrs.map((e) => (
              <tr key={e.id} data-ehr={e.id}>
                <td>{e.name}</td>
                <td>{e.iss}</td>
                <td>client {e.clientId}</td>
                <td>{e.disabled ? 'disabled' : e.autoProvision ? 'auto-provision' : 'linked practitioners only'}</td>
                <td data-part="frame-origins">framed by {e.frameOrigins.join(', ')}</td>
                <td>
                  <button class="secondary" name="open-practitioners" onClick={() => setOpen(open === e.id ? null : e.id)}>
                    Practitioners
                  </button>{' '}
                  <button class="secondary" name="edit-ehr" onClick={() => setEditing(editing === e.id ? null : e.id)}>
                    Edit
                  </button>{' '}
                  {e.disabled ? (
                    <button class="secondary" name="enable-ehr" onClick={() => void setDisabled(e, false)}>
                      Enable
                    </button>
                  ) : confirmingDisable === e.id ? (
                    <span data-part="confirm-disable">
                      Disable — this ends its open app sessions.{' '}
                      <button name="confirm-disable-ehr" onClick={() => void setDisabled(e, true)}>
                        Confirm
                      </button>{' '}
                      <button class="secondary" name="cancel-disable-ehr" onClick={() => setConfirmingDisable(null)}>
                        Cancel
                      </button>
                    </span>
                  ) : (
                    <button class="secondary" name="disable-ehr" onClick={() => setConfirmingDisable(e.id)}>
                      Disable
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {list.state === 'ready' && ehrs.length === 0 && <div>No EHR is registered for app launch.</div>}
      {edited && <EditEhr key={edited.id} ehr={edited} save={(form) => void save(edited.id, form)} cancel={() => setEditing(null)} />}
      <form
        onSubmit={(ev) => {
          ev.preventDefault();
          void register();
        }}
      >
        <label>EHR name</label>
        <input name="smart-name" value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} />
        <label>FHIR base URL the EHR launches with (iss)</label>
        <input name="smart-iss" placeholder="https://ehr.example.org/fhir" value={form.iss} onInput={(e) => setForm({ ...form, iss: e.currentTarget.value })} />
        <label>Client id (issued by the EHR)</label>
        <input name="smart-client-id" value={form.clientId} onInput={(e) => setForm({ ...form, clientId: e.currentTarget.value })} />
        <label>Redirect URI (registered at the EHR)</label>
        <input name="smart-redirect-uri" value={form.redirectUri} onInput={(e) => setForm({ ...form, redirectUri: e.currentTarget.value })} />
        <label>
          <input
            type="checkbox"
            name="smart-auto-provision"
            checked={form.autoProvision}
            onChange={(e) => setForm({ ...form, autoProvision: e.currentTarget.checked })}
            style="width:auto"
          />{' '}
          Give an unlinked practitioner of this EHR a clinician account at first launch
        </label>
        <div class="row" style="margin-top:6px">
          <button type="submit" name="register-ehr" disabled={!form.name.trim() || !form.iss.trim() || !form.clientId.trim() || !form.redirectUri.trim()}>
            Register EHR
          </button>
        </div>
      </form>
      <NoteLine note={note} />
      {opened && <PractitionerLinks key={opened.id} ehr={opened} send={send} />}
    </section>
  );
}
