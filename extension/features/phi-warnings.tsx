// Feature: live PHI scan of the native Salesforce e-mail composer and rich-text fields, findings highlighted in place, and a confirmation before send.
import { render } from 'preact';
import { scanText, type Finding } from '../../connector/compose/phi-scanner.js';
import { createShadowHost } from '../page/shadow-host.js';
import { timed, timedCallback } from '../page/work-timer.js';
import { lightning, ownHostAttribute } from '../selectors.js';
import { baseCss } from '../ui/theme.js';
import { PhiWarning } from '../ui/phi-warning.js';
import type { Feature } from './feature.js';

type Editable = HTMLElement;

interface FieldState {
  findings: Finding[];
  ranges: Range[];
  host: HTMLElement;
  root: ShadowRoot;
  /** The send button held back until the user confirms. */
  heldSend: HTMLElement | null;
}

export const highlightName = 'secure-outreach-phi';
const editableSelector = lightning.editable.join(',');
const composerSelector = lightning.composer.join(',');
const scanDelayMs = 150;

/** Text of a field and, for rich text, the text nodes with their offsets (so findings map back to Ranges). */
function textOf(field: Editable): { text: string; nodes: { node: Text; start: number }[] } {
  if (field instanceof HTMLTextAreaElement || field instanceof HTMLInputElement) return { text: field.value, nodes: [] };
  const nodes: { node: Text; start: number }[] = [];
  const walker = field.ownerDocument.createTreeWalker(field, NodeFilter.SHOW_TEXT);
  let text = '';
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    nodes.push({ node: n as Text, start: text.length });
    text += (n as Text).data;
  }
  return { text, nodes };
}

/** Maps scanner offsets onto DOM Ranges over the field's text nodes. */
export function rangesFor(doc: Document, nodes: { node: Text; start: number }[], findings: readonly Finding[]): Range[] {
  const locate = (offset: number) => {
    for (let i = nodes.length - 1; i >= 0; i--) {
      const { node, start } = nodes[i]!;
      if (offset >= start) return { node, offset: Math.min(offset - start, node.data.length) };
    }
    return null;
  };
  const ranges: Range[] = [];
  for (const f of findings) {
    const a = locate(f.start);
    const b = locate(f.end);
    if (!a || !b) continue;
    const range = doc.createRange();
    range.setStart(a.node, a.offset);
    range.setEnd(b.node, b.offset);
    ranges.push(range);
  }
  return ranges;
}

interface HighlightRegistry {
  set(name: string, value: unknown): void;
  delete(name: string): void;
}
type HighlightCtor = new (...ranges: Range[]) => unknown;

function highlightApi(win: Window): { registry: HighlightRegistry; Highlight: HighlightCtor } | null {
  const css = (win as unknown as { CSS?: { highlights?: HighlightRegistry } }).CSS;
  const Highlight = (win as unknown as { Highlight?: HighlightCtor }).Highlight;
  return css?.highlights && Highlight ? { registry: css.highlights, Highlight } : null;
}

export const phiWarnings: Feature = {
  name: 'phi-warnings',
  applies: () => true,
  start({ document, signal }) {
    const win = document.defaultView!;
    const fields = new Map<Editable, FieldState>();
    const timers = new Map<Editable, ReturnType<typeof setTimeout>>();
    let bypass: HTMLElement | null = null;
    const highlights = highlightApi(win);

    if (highlights && !document.querySelector(`style[${ownHostAttribute}="highlight"]`)) {
      const style = document.createElement('style');
      style.setAttribute(ownHostAttribute, 'highlight');
      style.textContent = `::highlight(${highlightName}) { background-color: rgba(234, 0, 30, .18); text-decoration: underline wavy #ba0517; }`;
      document.head.append(style);
    }

    const repaintHighlights = () => {
      if (!highlights) return;
      const all = [...fields.values()].flatMap((s) => s.ranges);
      if (all.length) highlights.registry.set(highlightName, new highlights.Highlight(...all));
      else highlights.registry.delete(highlightName);
    };

    const draw = (field: Editable, state: FieldState) =>
      render(
        <PhiWarning
          findings={state.findings}
          confirming={state.heldSend !== null}
          onSendAnyway={() => {
            const button = state.heldSend;
            state.heldSend = null;
            draw(field, state);
            if (button) {
              bypass = button;
              button.click();
            }
          }}
          onKeepEditing={() => {
            state.heldSend = null;
            draw(field, state);
            field.focus();
          }}
        />,
        state.root,
      );

    const scan = (field: Editable): FieldState | undefined =>
      timed(() => {
        const { text, nodes } = textOf(field);
        const findings = scanText(text);
        let state = fields.get(field);
        if (findings.length === 0) {
          if (state) {
            render(null, state.root);
            state.host.remove();
            fields.delete(field);
            repaintHighlights();
          }
          return undefined;
        }
        if (!state) {
          const { host, root } = createShadowHost(document, 'phi-warning', baseCss);
          const anchor = field.closest('lightning-input-rich-text') ?? field;
          anchor.after(host);
          state = { findings, ranges: [], host, root, heldSend: null };
          fields.set(field, state);
        }
        state.findings = findings;
        state.ranges = nodes.length ? rangesFor(document, nodes, findings) : [];
        repaintHighlights();
        draw(field, state);
        return state;
      });

    const onInput = timedCallback((event: Event) => {
      const target = event.target;
      if (!(target instanceof win.HTMLElement)) return;
      const field = target.closest<Editable>(editableSelector);
      if (!field) return;
      clearTimeout(timers.get(field));
      timers.set(
        field,
        setTimeout(() => {
          timers.delete(field);
          if (field.isConnected) scan(field);
        }, scanDelayMs),
      );
    });

    // Capture on window: we see the click before Lightning's own handlers on the button do.
    const onClick = timedCallback((event: MouseEvent) => {
      const target = event.target;
      if (!(target instanceof win.Element)) return;
      const button = target.closest<HTMLElement>(lightning.button);
      if (!button || !lightning.sendButtonLabel.test(button.textContent ?? (button as HTMLInputElement).value ?? '')) return;
      if (bypass === button) {
        bypass = null;
        return;
      }
      const scope = button.closest(composerSelector) ?? button.closest('form');
      if (!scope) return;
      for (const field of scope.querySelectorAll<Editable>(editableSelector)) {
        const state = scan(field);
        if (state) {
          event.preventDefault();
          event.stopImmediatePropagation();
          state.heldSend = button;
          draw(field, state);
          return;
        }
      }
    });

    // The docked composer outlives SPA navigation: what it already holds is scanned again for the new view.
    for (const field of document.querySelectorAll<Editable>(editableSelector)) {
      if ((field instanceof HTMLTextAreaElement ? field.value : field.textContent)?.trim()) scan(field);
    }

    document.addEventListener('input', onInput, { capture: true, signal });
    win.addEventListener('click', onClick, { capture: true, signal });
    signal.addEventListener('abort', () => {
      for (const t of timers.values()) clearTimeout(t);
      for (const state of fields.values()) {
        render(null, state.root);
        state.host.remove();
      }
      fields.clear();
      repaintHighlights();
    });
  },
};
