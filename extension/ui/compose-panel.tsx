// The compose panel: pick a template and an audience (a segment or this contact), see a masked preview, its PHI scan and the delivery forecast, then submit for approval or send an approved campaign.
import { useEffect, useState } from 'preact/hooks';
import type { Campaign, Forecast, Preview, Template } from '../../connector/api/contract.js';
import type { ConnectorClient } from '../connector-client.js';
import type { RecordRoute } from '../page/record-route.js';
import { errorText, useLoad } from './use-call.js';

type AudienceChoice = { kind: 'contact'; crmId: string } | { kind: 'segment'; segmentId: string };
const deliveryModes = [
  ['tls-or-escrow', 'TLS, else escrow notice'],
  ['tls-required', 'Only over verified TLS'],
  ['escrow', 'Always escrow portal'],
] as const;
type Mode = (typeof deliveryModes)[number][0];

export interface ComposePanelProps {
  client: ConnectorClient;
  record: RecordRoute | null;
  onClose(): void;
}

/** Strips the template's HTML for a text preview (the preview is shown as text, never injected as markup). */
export function htmlToText(html: string): string {
  return html
    .replace(/<(br|\/p|\/div|\/li|\/h\d)\s*\/?>/gi, '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&nbsp;/g, ' ')
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

export function ComposePanel({ client, record, onClose }: ComposePanelProps) {
  const [me] = useLoad(() => client.call('currentSession', {}), []);
  // The connector enforces roles; this only spares other roles a form they could not submit (and keeps zod out of the page bundle).
  if (me.state === 'ready' && me.value.user.role !== 'marketer') {
    return (
      <div class="panel" role="dialog" aria-label="Secure Outreach compose">
        <header>
          <span>Secure Outreach · Compose</span>
          <button class="secondary" onClick={onClose} aria-label="Close">
            ×
          </button>
        </header>
        <section data-part="status">Composing campaigns needs the marketer role; you are signed in as {me.value.user.role}.</section>
      </div>
    );
  }
  return <ComposeForm client={client} record={record} onClose={onClose} />;
}

function ComposeForm({ client, record, onClose }: ComposePanelProps) {
  const [templates] = useLoad(() => client.call('listTemplates', {}), []);
  const [segments] = useLoad(() => client.call('listSegments', {}), []);
  const [approved, reloadApproved] = useLoad(() => client.call('listCampaigns', { query: { status: 'approved' } }), []);
  const [templateId, setTemplateId] = useState('');
  const [audienceKind, setAudienceKind] = useState<'contact' | 'segment'>(record ? 'contact' : 'segment');
  const [segmentId, setSegmentId] = useState('');
  const [mode, setMode] = useState<Mode>('tls-or-escrow');
  const [name, setName] = useState('');
  const [preview, setPreview] = useState<Preview | null>(null);
  const [forecast, setForecast] = useState<Forecast | null>(null);
  const [busy, setBusy] = useState(false);
  const [status, setStatus] = useState<{ tone: 'ok' | 'error'; text: string } | null>(null);

  const template: Template | undefined = templates.state === 'ready' ? templates.value.templates.find((t) => t.id === templateId) : undefined;
  const audience: AudienceChoice | null =
    audienceKind === 'contact' && record ? { kind: 'contact', crmId: record.recordId } : audienceKind === 'segment' && segmentId ? { kind: 'segment', segmentId } : null;

  // Preview, scan and forecast follow every change of template, audience or mode.
  useEffect(() => {
    setPreview(null);
    setForecast(null);
    if (!template || !audience) return;
    let live = true;
    client.call('preview', { body: { templateId: template.id, audience } }).then(
      (p) => live && setPreview(p),
      (err) => live && setStatus({ tone: 'error', text: errorText(err) }),
    );
    client.call('forecast', { body: { templateId: template.id, audience, purpose: template.purpose, deliveryMode: mode } }).then(
      (f) => live && setForecast(f),
      (err) => live && setStatus({ tone: 'error', text: errorText(err) }),
    );
    return () => {
      live = false;
    };
  }, [templateId, audienceKind, segmentId, mode, template?.id]);

  const submit = async () => {
    if (!template || !audience) return;
    setBusy(true);
    setStatus(null);
    try {
      const draft = await client.call('createCampaign', {
        body: { name: name.trim() || `${template.name} ${new Date().toISOString().slice(0, 10)}`, templateId: template.id, audience, purpose: template.purpose, deliveryMode: mode },
      });
      const submitted = await client.call('submitCampaign', { params: { id: draft.id } });
      setStatus({ tone: 'ok', text: `Submitted for clinician approval (campaign ${submitted.id}, ${submitted.status}).` });
    } catch (err) {
      setStatus({ tone: 'error', text: errorText(err) });
    } finally {
      setBusy(false);
    }
  };

  const send = async (campaign: Campaign) => {
    setBusy(true);
    setStatus(null);
    try {
      const scheduled = await client.call('scheduleCampaign', { params: { id: campaign.id }, body: {} });
      setStatus({ tone: 'ok', text: `Sending "${scheduled.name}" (${scheduled.status}).` });
      reloadApproved();
    } catch (err) {
      setStatus({ tone: 'error', text: errorText(err) });
    } finally {
      setBusy(false);
    }
  };

  const blocked = preview?.scan.blocked ?? false;
  const modeProblem = forecast?.modeProblem ?? null;

  return (
    <div class="panel" role="dialog" aria-label="Secure Outreach compose">
      <header>
        <span>Secure Outreach · Compose</span>
        <button class="secondary" onClick={onClose} aria-label="Close">
          ×
        </button>
      </header>
      <section>
        <h3>Template</h3>
        {templates.state === 'error' && <div class="error">{templates.message}</div>}
        <select name="template" value={templateId} onChange={(e) => setTemplateId(e.currentTarget.value)} disabled={templates.state !== 'ready'}>
          <option value="">Choose a template…</option>
          {templates.state === 'ready' &&
            templates.value.templates.map((t) => (
              <option value={t.id} key={t.id}>
                {t.name} ({t.purpose})
              </option>
            ))}
        </select>
        <label>Campaign name</label>
        <input name="campaign-name" value={name} placeholder={template ? template.name : ''} onInput={(e) => setName(e.currentTarget.value)} />
      </section>
      <section>
        <h3>Audience</h3>
        <div class="row">
          {record && (
            <label>
              <input type="radio" name="audience" value="contact" checked={audienceKind === 'contact'} onChange={() => setAudienceKind('contact')} style="width:auto" /> This{' '}
              {record.object.toLowerCase()}
            </label>
          )}
          <label>
            <input type="radio" name="audience" value="segment" checked={audienceKind === 'segment'} onChange={() => setAudienceKind('segment')} style="width:auto" /> A
            segment
          </label>
        </div>
        {audienceKind === 'segment' && (
          <select name="segment" value={segmentId} onChange={(e) => setSegmentId(e.currentTarget.value)} disabled={segments.state !== 'ready'}>
            <option value="">Choose a segment…</option>
            {segments.state === 'ready' &&
              segments.value.segments.map((s) => (
                <option value={s.id} key={s.id}>
                  {s.name}
                  {s.lastCount !== null ? ` (${s.lastCount})` : ''}
                </option>
              ))}
          </select>
        )}
        <label>Delivery mode</label>
        <select name="delivery-mode" value={mode} onChange={(e) => setMode(e.currentTarget.value as Mode)}>
          {deliveryModes.map(([value, label]) => (
            <option value={value} key={value}>
              {label}
            </option>
          ))}
        </select>
      </section>
      {preview && (
        <section>
          <h3>Preview (PHI masked)</h3>
          <div class="preview" data-part="preview">
            <strong>{preview.subject}</strong>
            {'\n'}
            {htmlToText(preview.body)}
          </div>
          <div class={preview.scan.findings.length ? 'finding' : ''} data-part="scan">
            {preview.scan.findings.length === 0
              ? 'PHI scan: nothing found in the template text.'
              : `PHI scan: ${preview.scan.findings.length} finding(s) (${[...new Set(preview.scan.findings.map((f) => f.kind))].join(', ')})${blocked ? ' — blocked' : ''}.`}
          </div>
        </section>
      )}
      {forecast && (
        <section data-part="forecast">
          <h3>Delivery forecast</h3>
          <div>
            {forecast.recipients} recipient(s): {forecast.tls} over verified TLS, {forecast.escrow} by escrow notice, {forecast.held} held, {forecast.suppressed}{' '}
            suppressed (no authorization or opted out).
          </div>
          {modeProblem && <div class="error">{modeProblem}</div>}
        </section>
      )}
      <section>
        <div class="row">
          <button name="submit" disabled={busy || !template || !audience || blocked || modeProblem !== null} onClick={submit}>
            Submit for approval
          </button>
        </div>
        {status && (
          <div class={`status ${status.tone === 'error' ? 'error' : ''}`} role="status" data-part="status">
            {status.text}
          </div>
        )}
      </section>
      <section>
        <h3>Approved campaigns</h3>
        {approved.state === 'ready' && approved.value.campaigns.length === 0 && <div>None waiting to be sent.</div>}
        {approved.state === 'error' && <div class="error">{approved.message}</div>}
        {approved.state === 'ready' &&
          approved.value.campaigns.map((c) => (
            <div class="row" key={c.id}>
              <span>
                {c.name} · {c.audience.count} recipient(s)
              </span>
              <button class="secondary" disabled={busy} onClick={() => send(c)}>
                Send now
              </button>
            </div>
          ))}
      </section>
    </div>
  );
}
