// Compose routes that need no stored content: the PHI scanner over a draft (offsets only, never the matched text).
import { scanText } from '../../compose/phi-scanner.js';
import type { Handlers } from '../handler.js';

export function composeScanHandlers(): Handlers {
  return {
    scanText: async ({ body }) => {
      const findings = scanText(body.text).map((f) => ({ start: f.start, end: f.end, kind: f.kind, category: f.category, severity: f.severity, rule: f.rule }));
      // In the subject and preheader any finding blocks the template (they show in inbox lists); in the body it narrows the delivery modes.
      return { findings, blocked: body.field !== 'body' && findings.length > 0 };
    },
  };
}
