// The SMART on FHIR approval app page the EHR frames: who launched it, then the extension's approval queue with PHI findings and the delivery forecast per campaign.
import { render } from 'preact';
import { useState } from 'preact/hooks';
import type { Campaign } from '../../connector/api/contract.js';
import { CampaignReviewDetails, SmartSessionInfo, smartApiBase, smartPaths, csrfHeader } from '../../connector/smart/smart-contract.js';
import { httpClient } from '../background/connector-http.js';
import { ApprovalQueue } from '../ui/approval-queue.js';
import { baseCss } from '../ui/theme.js';
import { useLoad } from '../ui/use-call.js';
import { cookieFetch } from './cookie-fetch.js';

class PageError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function getJson<T>(path: string, schema: { parse(v: unknown): T }): Promise<T> {
  const response = await fetch(path, { credentials: 'same-origin', cache: 'no-store', headers: { accept: 'application/json' } });
  const body = (await response.json().catch(() => undefined)) as
    | { issue?: Array<{ details?: { text?: string; coding?: Array<{ code?: string }> } }> }
    | undefined;
  if (!response.ok) {
    const issue = body?.issue?.[0]?.details;
    throw new PageError(issue?.coding?.[0]?.code ?? 'ERROR', issue?.text ?? `The connector answered ${response.status}.`);
  }
  return schema.parse(body);
}

const forecastRows: Array<[keyof CampaignReviewDetails['forecast'], string]> = [
  ['recipients', 'Recipients'],
  ['tls', 'Over verified TLS'],
  ['opportunistic', 'PHI-free, without verified TLS'],
  ['escrow', 'Escrow-portal notice'],
  ['held', 'Held (no verified TLS possible)'],
  ['suppressed', 'Excluded'],
];

function Findings({ label, text, result }: { label: string; text: string; result: CampaignReviewDetails['findings']['body'] }) {
  if (result.findings.length === 0) return <li data-field={label}>{label}: no PHI found</li>;
  return (
    <li data-field={label} class="finding">
      {label}: {result.findings.length} PHI finding(s){result.blocked ? ' — blocks sending' : ''}
      <ul>
        {result.findings.map((f) => (
          <li key={`${f.start}-${f.rule}`}>
            <code>{text.slice(f.start, f.end)}</code> · {f.kind} ({f.category}, {f.severity})
          </li>
        ))}
      </ul>
    </li>
  );
}

function ReviewDetails({ campaign }: { campaign: Campaign }) {
  const [details] = useLoad(() => getJson(smartPaths.review.replace(':id', encodeURIComponent(campaign.id)), CampaignReviewDetails), [campaign.id]);
  if (details.state === 'loading') return <div class="status">Checking content and delivery…</div>;
  if (details.state === 'error') return <div class="error" role="alert">{details.message}</div>;
  const { findings, forecast } = details.value;
  const excluded = Object.entries(forecast.excluded).filter(([, n]) => n > 0);
  return (
    <div class="review" data-review={campaign.id}>
      <label>PHI findings</label>
      <ul class="findings">
        <Findings label="Subject" text={campaign.content.subject} result={findings.subject} />
        <Findings label="Preheader" text={campaign.content.preheader} result={findings.preheader} />
        <Findings label="Body" text={campaign.content.body} result={findings.body} />
      </ul>
      <label>Delivery forecast</label>
      <table class="forecast">
        <tbody>
          {forecastRows.map(([key, text]) => (
            <tr key={key} data-forecast={key}>
              <td>{text}</td>
              <td>{String(forecast[key])}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {excluded.length > 0 && <div class="sub">Excluded: {excluded.map(([r, n]) => `${r} ${n}`).join(', ')}</div>}
      {forecast.modeProblem && (
        <div class="error" role="alert">
          {forecast.modeProblem}
        </div>
      )}
    </div>
  );
}

function SmartApp() {
  const [session] = useLoad(() => getJson(smartPaths.session, SmartSessionInfo), []);
  const [ended, setEnded] = useState(false);
  if (session.state === 'loading') return <div>Loading…</div>;
  if (session.state === 'error' || ended) {
    return (
      <div class="card">
        <h3>Secure Outreach · Approvals</h3>
        <div class="error" role="alert">
          {ended ? 'The session has ended.' : session.state === 'error' ? session.message : ''} Launch the app again from the EHR.
        </div>
      </div>
    );
  }
  const info = session.value;
  const client = httpClient({ baseUrl: `${location.origin}${smartApiBase}`, token: () => info.csrf, fetch: cookieFetch(info.csrf) });
  const signOut = async () => {
    await fetch(smartPaths.logout, { method: 'POST', credentials: 'same-origin', headers: { [csrfHeader]: info.csrf } });
    setEnded(true);
  };
  return (
    <div>
      <header class="bar">
        <strong>Secure Outreach · Approvals</strong>
        <span data-identity>
          {info.practitioner} · {info.ehr.name}
          {info.user ? ` · signed in as ${info.user.username}` : ''} · until {info.expiresAt.slice(11, 16)} UTC
        </span>
        <button class="secondary" name="end-session" onClick={signOut}>
          End session
        </button>
      </header>
      {info.user ? (
        <ApprovalQueue client={client} details={(c) => <ReviewDetails campaign={c} />} />
      ) : (
        <div class="error" role="alert" data-unlinked>
          Your EHR identity ({info.practitioner}) is not linked to a clinician account, so you cannot approve or reject outreach here. Ask an
          administrator to run <code>outreach smart link-practitioner</code>.
        </div>
      )}
    </div>
  );
}

const style = document.createElement('style');
style.textContent = `${baseCss}
body { margin: 0; padding: 12px 16px; font-size: 13px; color: #181818; background: #f4f6f9; }
.bar { display: flex; gap: 12px; align-items: center; justify-content: space-between; padding: 8px 12px; margin-bottom: 10px;
  background: #0b5cab; color: #fff; border-radius: 6px; }
.card { background: #fff; border: 1px solid #d8dde6; border-radius: 6px; padding: 10px 12px; margin-bottom: 10px; }
.kv { display: grid; grid-template-columns: 140px 1fr; gap: 2px 10px; margin: 8px 0; }
.kv dt { color: #555; } .kv dd { margin: 0; }
.error { border: 1px solid #e37b7b; background: #fde8e8; color: #7a1010; padding: 8px 10px; border-radius: 4px; margin-top: 6px; }
.findings { margin: 2px 0 6px; padding-left: 18px; }
.forecast td { padding: 1px 12px 1px 0; } .forecast td:last-child { font-weight: 600; text-align: right; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }`;
document.head.append(style);
render(<SmartApp />, document.getElementById('app')!);
