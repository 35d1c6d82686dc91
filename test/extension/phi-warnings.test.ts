// @vitest-environment happy-dom
// PHI warnings on the native composer: live scan while typing, the warning under the field, findings mapped to ranges, and the send held until confirmed.
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { scanText } from '../../connector/compose/phi-scanner.js';
import { phiWarnings, rangesFor } from '../../extension/features/phi-warnings.js';
import type { ConnectorClient } from '../../extension/connector-client.js';
import { summarizeFindings } from '../../extension/ui/phi-warning.js';
import { captureClosedRoots } from './support/closed-roots.js';

const unusedClient: ConnectorClient = {
  call: () => Promise.reject(new Error('phi warnings work offline: they never call the connector')),
};

const composerHtml = `
  <force-docking-panel>
    <lightning-input-rich-text><div class="ql-editor" contenteditable="true"></div></lightning-input-rich-text>
    <lightning-button><button type="button">Send</button></lightning-button>
  </force-docking-panel>`;

describe('PHI warnings', () => {
  const closed = captureClosedRoots();
  let controller: AbortController;
  let sent: number;

  beforeEach(() => {
    vi.useFakeTimers();
    document.body.innerHTML = composerHtml;
    sent = 0;
    // The page's own send handler (Lightning's), registered before ours.
    document.querySelector('button')!.addEventListener('click', () => sent++);
    controller = new AbortController();
    const url = new URL('https://acme.lightning.force.com/lightning/r/Contact/003Dn00000A1b2cAAB/view');
    void phiWarnings.start({ document, url, record: null, client: unusedClient, signal: controller.signal });
  });
  afterEach(() => {
    controller.abort();
    vi.useRealTimers();
    document.body.innerHTML = '';
  });
  afterAll(() => closed.restore());

  const editor = () => document.querySelector<HTMLElement>('.ql-editor')!;
  const typeInto = (html: string) => {
    editor().innerHTML = html;
    editor().dispatchEvent(new Event('input', { bubbles: true, composed: true }));
  };
  const warning = () => closed.of('phi-warning')[0]?.querySelector('.warning-box')?.textContent ?? null;

  it('warns under the field once typing pauses, naming the kinds but never the text', () => {
    typeInto('<p>Your <b>type 2 diabetes</b> and A1C of 9.2% need review.</p>');
    expect(warning()).toBeNull();
    vi.advanceTimersByTime(200);
    const text = warning()!;
    expect(text).toContain('PHI detected');
    expect(text).toContain('diagnosis or condition');
    expect(text).toContain('lab value');
    expect(text).not.toContain('diabetes');
    expect(text).not.toContain('9.2');
    expect(closed.of('phi-warning')[0]!.host.previousElementSibling!.tagName.toLowerCase()).toBe('lightning-input-rich-text');
  });

  it('clears the warning when the PHI is removed', () => {
    typeInto('<p>Your diabetes visit</p>');
    vi.advanceTimersByTime(200);
    expect(warning()).not.toBeNull();
    typeInto('<p>Our flu clinic opens Monday.</p>');
    vi.advanceTimersByTime(200);
    expect(closed.of('phi-warning')).toHaveLength(0);
  });

  it('holds the send while PHI is in the message, until the user confirms', () => {
    typeInto('<p>Diagnosis code E11.9 for you</p>');
    document.querySelector('button')!.click();
    expect(sent).toBe(0);
    expect(warning()).toContain('Send this message anyway?');

    const [keep, ] = [...closed.of('phi-warning')[0]!.querySelectorAll('button')].filter((b) => b.textContent === 'Keep editing');
    keep!.click();
    expect(warning()).not.toContain('Send this message anyway?');
    document.querySelector('button')!.click();
    expect(sent).toBe(0);

    const sendAnyway = [...closed.of('phi-warning')[0]!.querySelectorAll('button')].find((b) => b.textContent === 'Send anyway')!;
    sendAnyway.click();
    expect(sent).toBe(1);
  });

  it('lets a clean message go through untouched', () => {
    typeInto('<p>Our walk-in flu clinic is open weekdays.</p>');
    document.querySelector('button')!.click();
    expect(sent).toBe(1);
    expect(closed.of('phi-warning')).toHaveLength(0);
  });

  it('stops listening when the page view ends', () => {
    controller.abort();
    typeInto('<p>Your diabetes visit</p>');
    vi.advanceTimersByTime(200);
    document.querySelector('button')!.click();
    expect(closed.of('phi-warning')).toHaveLength(0);
    expect(sent).toBe(1);
  });
});

describe('rangesFor', () => {
  it('maps scanner offsets across several text nodes', () => {
    document.body.innerHTML = '<div id="e">Your <b>type 2 diab</b>etes and <i>E11.9</i> code</div>';
    const nodes: { node: Text; start: number }[] = [];
    const walker = document.createTreeWalker(document.getElementById('e')!, NodeFilter.SHOW_TEXT);
    let offset = 0;
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      nodes.push({ node: n as Text, start: offset });
      offset += (n as Text).data.length;
    }
    const text = document.getElementById('e')!.textContent!;
    const findings = scanText(text);
    const ranges = rangesFor(document, nodes, findings);
    expect(ranges.map((r) => r.toString())).toEqual(findings.map((f) => text.slice(f.start, f.end)));
    expect(ranges.map((r) => r.toString())).toContain('E11.9');
  });

  it('summarises findings by kind and count', () => {
    expect(summarizeFindings(scanText('Your diabetes, A1C 9.2%'))).toMatch(/^diagnosis or condition, lab value \(\d\)$/);
  });
});
