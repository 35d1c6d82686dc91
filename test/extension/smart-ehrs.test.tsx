// @vitest-environment happy-dom
// The options page's SMART section through the real background router and a real connector: register, edit (frame origins too), disable after a confirmation and enable an EHR for app launch, link and unlink practitioners, refusals shown.
import { h, render } from 'preact';
import { act } from 'preact/test-utils';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { messageRouter } from '../../extension/background/message-router.js';
import { sessionStore } from '../../extension/background/session-store.js';
import { ConnectorCallError } from '../../extension/connector-error.js';
import type { Reply } from '../../extension/messages.js';
import { SmartEhrs, type SmartAdminSend } from '../../extension/options/smart-ehrs.js';
import { users } from '../e2e/support/outreach-fixtures.js';
import { startTestConnector, type TestConnector } from './support/connector-client.js';
import { MemoryStorageArea } from './support/memory-storage.js';

const extensionId = 'abcdefghijklmnopabcdefghijklmnop';
const extensionUrl = `chrome-extension://${extensionId}/`;
const optionsPage = { id: extensionId, url: `${extensionUrl}options/index.html` };
const contentScript = { id: extensionId, url: 'https://acme.lightning.force.com/lightning/r/Contact/003Dn00000A1b2cAAB/view' };

describe('SMART EHR registration on the options page', () => {
  let world: TestConnector;
  let adminToken: string;
  let router: ReturnType<typeof messageRouter>;
  let calls: string[];
  let host: HTMLElement;

  beforeAll(async () => {
    world = await startTestConnector();
    adminToken = await world.token({ username: world.adminUsername, password: users.admin.password });
  }, 60_000);
  afterAll(() => world?.close());

  const signIn = async (user: { username: string; password: string }) => {
    calls = [];
    router = messageRouter({
      store: sessionStore(new MemoryStorageArea().asArea(), new MemoryStorageArea().asArea()),
      extensionId,
      extensionUrl,
      fetch: (input, init) => {
        calls.push(`${init?.method ?? 'GET'} ${new URL(String(input)).pathname}`);
        return fetch(input, init);
      },
      syncEhrOrigins: async (origins) => origins,
    });
    expect(await router.receive({ type: 'settings/set-connector', url: world.url }, optionsPage)).toMatchObject({ ok: true });
    expect(await router.receive({ type: 'session/sign-in', username: user.username, password: user.password }, optionsPage)).toMatchObject({ ok: true });
    calls = [];
  };
  /** What the options page passes the section: a message to the background, unwrapped as `send` in api.ts does. */
  const send: SmartAdminSend = async (request) => {
    const reply = (await router.receive({ type: 'smart-admin', request }, optionsPage)) as Reply<unknown>;
    if (!reply.ok) throw new ConnectorCallError(reply.error);
    return reply.data as never;
  };

  /** The connector's own record, through its admin routes. */
  const registered = async (iss: string) => {
    const { ehrs } = await world.get('/smart/admin/ehrs', adminToken);
    const ehr = ehrs.find((e: { iss: string }) => e.iss === iss);
    return { ehr, links: ehr ? (await world.get(`/smart/admin/ehrs/${ehr.id}/practitioners`, adminToken)).links : [] };
  };
  let n = 0;
  let iss: string;

  beforeEach(async () => {
    iss = `https://fhir${++n}.riverside.example/r4`;
    await signIn({ username: world.adminUsername, password: users.admin.password });
    host = document.createElement('div');
    document.body.append(host);
    render(h(SmartEhrs, { send, connectorUrl: world.url }), host);
    await vi.waitFor(() => expect(host.querySelector('[data-part=smart-ehrs][data-loaded]')).not.toBeNull());
  });
  afterEach(() => {
    render(null, host);
    host.remove();
  });

  const q = <T extends Element>(sel: string) => host.querySelector<T>(sel)!;
  const type = (name: string, value: string) =>
    act(() => {
      const input = q<HTMLInputElement>(`input[name=${name}]`);
      input.value = value;
      input.dispatchEvent(new Event('input', { bubbles: true }));
    });
  const click = (name: string) => act(() => q<HTMLButtonElement>(`button[name=${name}]`).click());
  const register = async (autoProvision = false) => {
    await type('smart-name', 'Riverside EHR');
    await type('smart-iss', iss);
    await type('smart-client-id', 'outreach-approvals');
    if (autoProvision) await act(() => q<HTMLInputElement>('input[name=smart-auto-provision]').click());
    await click('register-ehr');
  };

  it('prefills the redirect URI with the connector callback and registers the EHR on the connector', async () => {
    expect(q<HTMLInputElement>('input[name=smart-redirect-uri]').value).toBe(`${world.url}/smart/callback`);
    expect(q<HTMLButtonElement>('button[name=register-ehr]').disabled).toBe(true);
    await register(true);
    await vi.waitFor(() => expect(host.textContent).toContain(`Registered Riverside EHR (${iss}) for app launch.`));
    const { ehr } = await registered(iss);
    await vi.waitFor(() => expect(host.querySelector(`tr[data-ehr="${ehr.id}"]`)?.textContent).toContain('auto-provision'));
    // The form is empty again, its redirect URI prefilled for the next EHR.
    expect(q<HTMLInputElement>('input[name=smart-iss]').value).toBe('');
    expect(q<HTMLInputElement>('input[name=smart-redirect-uri]').value).toBe(`${world.url}/smart/callback`);

    expect(ehr).toMatchObject({
      name: 'Riverside EHR', iss, clientId: 'outreach-approvals', redirectUri: `${world.url}/smart/callback`, autoProvision: true, createdBy: world.adminUsername,
    });
    // The list reloads and the new EHR's practitioner links open.
    await vi.waitFor(() => expect(calls).toEqual(['GET /smart/admin/ehrs', 'POST /smart/admin/ehrs', 'GET /smart/admin/ehrs', `GET /smart/admin/ehrs/${ehr.id}/practitioners`]));
  });

  it('links a practitioner to a clinician account, shows the link, and unlinks it', async () => {
    await register();
    await vi.waitFor(() => expect(host.querySelector('[data-part=practitioner-links]')).not.toBeNull());
    await vi.waitFor(() => expect(host.textContent).toContain('No practitioner is linked yet.'));
    await type('practitioner', 'Practitioner/dr-chen-7');
    await type('practitioner-username', users.clinician.username);
    await click('link-practitioner');
    await vi.waitFor(() => expect(host.textContent).toContain(`Linked Practitioner/dr-chen-7 to ${users.clinician.username}.`));
    await vi.waitFor(() => expect(host.querySelector('[data-link="Practitioner/dr-chen-7"]')?.textContent).toContain(`${users.clinician.username} (clinician)`));
    expect((await registered(iss)).links.map((l: { practitioner: string; username: string }) => [l.practitioner, l.username])).toEqual([['Practitioner/dr-chen-7', users.clinician.username]]);

    await click('unlink-practitioner');
    await vi.waitFor(() => expect(host.textContent).toContain('Unlinked Practitioner/dr-chen-7.'));
    await vi.waitFor(() => expect(host.querySelector('[data-link]')).toBeNull());
    expect((await registered(iss)).links).toEqual([]);
  });

  it('shows the connector refusing a link to an account that is not a clinician', async () => {
    await register();
    await vi.waitFor(() => expect(host.querySelector('[data-part=practitioner-links]')).not.toBeNull());
    await type('practitioner', 'Practitioner/mk-1');
    await type('practitioner-username', users.marketer.username);
    await click('link-practitioner');
    await vi.waitFor(() => expect(host.querySelector('[data-part=practitioner-links] .status.error')).not.toBeNull());
    expect((await registered(iss)).links).toEqual([]);
  });

  it('refuses a malformed practitioner reference in the background, before any request', async () => {
    await register();
    await vi.waitFor(() => expect(host.textContent).toContain('No practitioner is linked yet.'));
    calls = [];
    await type('practitioner', 'Patient/123');
    await type('practitioner-username', users.clinician.username);
    await click('link-practitioner');
    await vi.waitFor(() => expect(host.querySelector('[data-part=practitioner-links] .status.error')).not.toBeNull());
    expect(host.querySelector('[data-part=practitioner-links] .status.error')!.textContent).toMatch(/Malformed message at request\.link\.practitioner/);
    expect(calls).toEqual([]);
  });

  /** Registers the test's EHR through the form and waits for its row. */
  const registeredRow = async () => {
    await register();
    await vi.waitFor(() => expect(host.textContent).toContain(`Registered Riverside EHR (${iss}) for app launch.`));
    const { ehr } = await registered(iss);
    await vi.waitFor(() => expect(host.querySelector(`tr[data-ehr="${ehr.id}"]`)).not.toBeNull());
    // The new EHR's practitioner links have loaded: no request is left in flight.
    await vi.waitFor(() => expect(host.textContent).toContain('No practitioner is linked yet.'));
    return ehr as { id: string };
  };
  const clickIn = (ehrId: string, name: string) => act(() => q<HTMLButtonElement>(`tr[data-ehr="${ehrId}"] button[name=${name}]`).click());

  it("edits an EHR's name, client id and auto-provisioning on the connector, its iss kept", async () => {
    const { id } = await registeredRow();
    await clickIn(id, 'edit-ehr');
    await vi.waitFor(() => expect(host.querySelector(`form[data-part=edit-ehr][data-ehr="${id}"]`)).not.toBeNull());
    expect(q<HTMLInputElement>('input[name=smart-edit-name]').value).toBe('Riverside EHR');
    expect(q<HTMLInputElement>('input[name=smart-edit-client-id]').value).toBe('outreach-approvals');
    expect(q('form[data-part=edit-ehr]').textContent).toContain(iss);
    await type('smart-edit-name', 'Riverside North');
    await type('smart-edit-client-id', 'outreach-north');
    await act(() => q<HTMLInputElement>('input[name=smart-edit-auto-provision]').click());
    calls = [];
    await click('save-ehr');
    await vi.waitFor(() => expect(host.textContent).toContain(`Saved Riverside North (${iss}).`));
    // The form closes and the row shows the connector's record.
    await vi.waitFor(() => expect(host.querySelector('form[data-part=edit-ehr]')).toBeNull());
    await vi.waitFor(() => expect(host.querySelector(`tr[data-ehr="${id}"]`)?.textContent).toContain('Riverside North'));
    expect(host.querySelector(`tr[data-ehr="${id}"]`)!.textContent).toContain('client outreach-north');
    expect(host.querySelector(`tr[data-ehr="${id}"]`)!.textContent).toContain('auto-provision');
    expect((await registered(iss)).ehr).toMatchObject({ id, iss, name: 'Riverside North', clientId: 'outreach-north', autoProvision: true, disabled: false });
    // One change, then the list reloads (and with it the open practitioner links).
    await vi.waitFor(() => expect(calls).toEqual([`PATCH /smart/admin/ehrs/${id}`, 'GET /smart/admin/ehrs', `GET /smart/admin/ehrs/${id}/practitioners`]));
  });

  it('shows the connector refusing a bad client id, naming the field, and keeps the registration as it was', async () => {
    const { id } = await registeredRow();
    await clickIn(id, 'edit-ehr');
    await vi.waitFor(() => expect(host.querySelector('form[data-part=edit-ehr]')).not.toBeNull());
    await type('smart-edit-client-id', 'has a space');
    await click('save-ehr');
    await vi.waitFor(() => expect(host.querySelector('[data-part=smart-ehrs] > .status.error')).not.toBeNull());
    expect(host.querySelector('[data-part=smart-ehrs] > .status.error')!.textContent).toContain('clientId');
    // The form stays open with what the admin typed, to fix it.
    expect(q<HTMLInputElement>('input[name=smart-edit-client-id]').value).toBe('has a space');
    expect((await registered(iss)).ehr).toMatchObject({ clientId: 'outreach-approvals' });
  });

  it('disables an EHR so that it can no longer launch the app, and enables it again', async () => {
    const { id } = await registeredRow();
    await clickIn(id, 'disable-ehr');
    await clickIn(id, 'confirm-disable-ehr');
    await vi.waitFor(() => expect(host.textContent).toContain('Disabled Riverside EHR: it can no longer launch the app'));
    await vi.waitFor(() => expect(host.querySelector(`tr[data-ehr="${id}"] button[name=enable-ehr]`)).not.toBeNull());
    expect(host.querySelector(`tr[data-ehr="${id}"]`)!.textContent).toContain('disabled');
    expect((await registered(iss)).ehr).toMatchObject({ id, disabled: true });
    // The connector refuses a launch from it.
    const launch = await fetch(`${world.url}/smart/launch?iss=${encodeURIComponent(iss)}&launch=abc`, { redirect: 'manual' });
    expect(launch.status).toBe(400);
    expect(await launch.text()).toContain('data-error-code="SMART_UNKNOWN_ISS"');

    await clickIn(id, 'enable-ehr');
    await vi.waitFor(() => expect(host.textContent).toContain('Enabled Riverside EHR: it may launch the app again.'));
    await vi.waitFor(() => expect(host.querySelector(`tr[data-ehr="${id}"] button[name=disable-ehr]`)).not.toBeNull());
    expect((await registered(iss)).ehr).toMatchObject({ id, disabled: false });
  });

  it("edits an EHR's frame origins on the connector and shows them after the page reloads", async () => {
    const { id } = await registeredRow();
    // By default the EHR's own origin frames the app.
    expect(host.querySelector(`tr[data-ehr="${id}"] [data-part=frame-origins]`)!.textContent).toBe(`framed by ${new URL(iss).origin}`);
    await clickIn(id, 'edit-ehr');
    await vi.waitFor(() => expect(host.querySelector('form[data-part=edit-ehr]')).not.toBeNull());
    expect(q<HTMLTextAreaElement>('textarea[name=smart-edit-frame-origins]').value).toBe(new URL(iss).origin);
    await act(() => {
      const area = q<HTMLTextAreaElement>('textarea[name=smart-edit-frame-origins]');
      area.value = 'https://ehr.riverside.example\nhttps://portal.riverside.example:8443, https://EHR.riverside.example/';
      area.dispatchEvent(new Event('input', { bubbles: true }));
    });
    calls = [];
    await click('save-ehr');
    await vi.waitFor(() => expect(host.textContent).toContain(`Saved Riverside EHR (${iss}).`));
    const origins = ['https://ehr.riverside.example', 'https://portal.riverside.example:8443'];
    expect((await registered(iss)).ehr).toMatchObject({ id, frameOrigins: origins });
    expect(calls[0]).toBe(`PATCH /smart/admin/ehrs/${id}`);

    // The page reloads: the row and the edit form show the connector's record.
    render(null, host);
    render(h(SmartEhrs, { send, connectorUrl: world.url }), host);
    await vi.waitFor(() => expect(host.querySelector(`tr[data-ehr="${id}"] [data-part=frame-origins]`)?.textContent).toBe(`framed by ${origins.join(', ')}`));
    await clickIn(id, 'edit-ehr');
    await vi.waitFor(() => expect(host.querySelector('form[data-part=edit-ehr]')).not.toBeNull());
    expect(q<HTMLTextAreaElement>('textarea[name=smart-edit-frame-origins]').value).toBe(origins.join('\n'));
  });

  it('refuses a frame origin that is not an https origin in the page, naming it, and sends nothing', async () => {
    const { id } = await registeredRow();
    for (const bad of ['https://ehr.riverside.example/launch', 'http://ehr.riverside.example', 'ehr.riverside.example']) {
      await clickIn(id, 'edit-ehr');
      await vi.waitFor(() => expect(host.querySelector('form[data-part=edit-ehr]')).not.toBeNull());
      await act(() => {
        const area = q<HTMLTextAreaElement>('textarea[name=smart-edit-frame-origins]');
        area.value = `https://ok.riverside.example, ${bad}`;
        area.dispatchEvent(new Event('input', { bubbles: true }));
      });
      calls = [];
      await click('save-ehr');
      await vi.waitFor(() => expect(host.querySelector('[data-part=smart-ehrs] > .status.error')?.textContent).toContain(`"${bad}" is not an https origin`));
      expect(calls).toEqual([]);
      // The form stays open with what the admin typed, to fix it.
      expect(q<HTMLTextAreaElement>('textarea[name=smart-edit-frame-origins]').value).toBe(`https://ok.riverside.example, ${bad}`);
      await click('cancel-edit-ehr');
    }
    expect((await registered(iss)).ehr).toMatchObject({ frameOrigins: [new URL(iss).origin] });
  });

  it('has the connector itself refuse a bad frame origin past the page check, with a 400 naming frameOrigins', async () => {
    const { id } = await registeredRow();
    // Past the page's own check (a request straight to the background), the connector refuses it too.
    expect(await router.receive({ type: 'smart-admin', request: { op: 'update-ehr', ehrId: id, changes: { frameOrigins: ['ftp://ehr.riverside.example'] } } }, optionsPage)).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST', field: 'frameOrigins' },
    });
    expect(calls).toContain(`PATCH /smart/admin/ehrs/${id}`);
    expect((await registered(iss)).ehr).toMatchObject({ frameOrigins: [new URL(iss).origin] });
  });

  it('disables an EHR only after the inline confirmation; Cancel changes nothing', async () => {
    const { id } = await registeredRow();
    calls = [];
    await clickIn(id, 'disable-ehr');
    await vi.waitFor(() => expect(host.querySelector(`tr[data-ehr="${id}"] [data-part=confirm-disable]`)?.textContent).toContain('Disable — this ends its open app sessions.'));
    expect(calls).toEqual([]);
    await clickIn(id, 'cancel-disable-ehr');
    await vi.waitFor(() => expect(host.querySelector(`tr[data-ehr="${id}"] button[name=disable-ehr]`)).not.toBeNull());
    expect(host.querySelector(`tr[data-ehr="${id}"] [data-part=confirm-disable]`)).toBeNull();
    expect(calls).toEqual([]);
    expect((await registered(iss)).ehr).toMatchObject({ id, disabled: false });

    await clickIn(id, 'disable-ehr');
    await clickIn(id, 'confirm-disable-ehr');
    await vi.waitFor(() => expect(host.textContent).toContain('Disabled Riverside EHR: it can no longer launch the app, and its open app sessions ended.'));
    expect(calls[0]).toBe(`PATCH /smart/admin/ehrs/${id}`);
    expect((await registered(iss)).ehr).toMatchObject({ id, disabled: true });
    await vi.waitFor(() => expect(host.querySelector(`tr[data-ehr="${id}"] button[name=enable-ehr]`)).not.toBeNull());
  });

  it('answers an unknown registration with NOT_FOUND, and refuses a malformed id before any request', async () => {
    expect(await router.receive({ type: 'smart-admin', request: { op: 'update-ehr', ehrId: '999999', changes: { disabled: true } } }, optionsPage)).toMatchObject({
      ok: false,
      error: { code: 'NOT_FOUND' },
    });
    calls = [];
    expect(await router.receive({ type: 'smart-admin', request: { op: 'update-ehr', ehrId: '../users', changes: { disabled: true } } }, optionsPage)).toMatchObject({
      ok: false,
      error: { code: 'BAD_MESSAGE', field: 'request.ehrId' },
    });
    expect(await router.receive({ type: 'smart-admin', request: { op: 'update-ehr', ehrId: '1', changes: { iss: 'https://elsewhere.example/fhir' } } }, optionsPage)).toMatchObject({
      ok: false,
      error: { code: 'BAD_MESSAGE' },
    });
    expect(calls).toEqual([]);
  });

  it('lets only an admin on an extension page use it', async () => {
    const change = { op: 'update-ehr', ehrId: '1', changes: { disabled: true } };
    expect(await router.receive({ type: 'smart-admin', request: { op: 'list-ehrs' } }, contentScript)).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await router.receive({ type: 'smart-admin', request: change }, contentScript)).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    for (const user of [users.clinician, users.marketer]) {
      await signIn(user);
      expect(await router.receive({ type: 'smart-admin', request: { op: 'list-ehrs' } }, optionsPage)).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
      expect(await router.receive({ type: 'smart-admin', request: change }, optionsPage)).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    }
    expect(calls).toEqual([]);
  });
});
