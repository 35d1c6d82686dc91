// The warning shown under a field that holds possible PHI, and the confirmation asked before such a message is sent.
import type { Finding } from '../../connector/compose/phi-scanner.js';

const kindLabels: Record<Finding['kind'], string> = {
  dob: 'date of birth',
  mrn: 'record number',
  ssn: 'SSN',
  phone: 'phone number',
  email: 'e-mail address',
  address: 'street address',
  icd10: 'diagnosis code',
  snomed: 'SNOMED code',
  'lab-value': 'lab value',
  condition: 'diagnosis or condition',
  medication: 'medication',
};

/** "diagnosis or condition, lab value (3)": kinds only, never the matched text. */
export function summarizeFindings(findings: readonly Finding[]): string {
  const kinds = [...new Set(findings.map((f) => kindLabels[f.kind]))];
  return `${kinds.join(', ')} (${findings.length})`;
}

export interface PhiWarningProps {
  findings: readonly Finding[];
  /** Set while a send is held for confirmation. */
  confirming: boolean;
  onSendAnyway(): void;
  onKeepEditing(): void;
}

export function PhiWarning({ findings, confirming, onSendAnyway, onKeepEditing }: PhiWarningProps) {
  if (findings.length === 0) return null;
  const high = findings.some((f) => f.severity === 'high');
  return (
    <div class="warning-box" role="alert">
      <strong>{high ? 'PHI detected' : 'Possible PHI'}:</strong> {summarizeFindings(findings)}. Plain CRM e-mail is not a PHI-safe
      channel; remove it or send through a Secure Outreach campaign.
      {confirming && (
        <div class="row">
          <span>Send this message anyway?</span>
          <button class="danger" onClick={onSendAnyway}>
            Send anyway
          </button>
          <button class="secondary" onClick={onKeepEditing}>
            Keep editing
          </button>
        </div>
      )}
    </div>
  );
}
