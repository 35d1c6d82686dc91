// Every DOM hook the extension depends on in Salesforce Lightning and the EHR, in one place: when a release moves something, this is the file to change.

/** Salesforce Lightning Experience (isolated world: synthetic shadow is invisible here, component templates are plain children). */
export const lightning = {
  /** The visible page; pages left by SPA navigation stay in the DOM, hidden. */
  activePage: '.oneContent.active',
  /** Record page URL: /lightning/r/<Object>/<15|18-char id>/view. */
  recordPath: /^\/lightning\/r\/(Contact|Lead)\/([A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?)\/view\/?$/,
  /** The e-mail value on Contact and Lead pages (the emailui wrappers first, then the generic layout item; older releases use force-record-layout-item). */
  emailField: [
    'emailui-formatted-email-contact lightning-formatted-email',
    'emailui-formatted-email-lead lightning-formatted-email',
    'records-record-layout-item[field-label="Email"] lightning-formatted-email',
    'force-record-layout-item[field-label="Email"] lightning-formatted-email',
  ],
  emailLink: 'a[href^="mailto:"]',
  /** Rich-text editors (lightning-input-rich-text is Quill underneath) and plain text areas where PHI can be typed. */
  editable: [
    'lightning-input-rich-text [contenteditable="true"]',
    '.ql-editor[contenteditable="true"]',
    '.cke_editable[contenteditable="true"]',
    'textarea',
  ],
  /** Containers of the native e-mail composer (docked or in the activity publisher). */
  composer: ['force-docking-panel', '.forceDockingPanel', 'emailui-email-composer', '.emailuiEmailComposer', 'force-publisher'],
  /** A send button is recognised by its label, which survives releases better than its classes. */
  sendButtonLabel: /^\s*send\s*$/i,
  button: 'button, [role="button"], input[type="submit"]',
} as const;

/** The EHR page: we only add our own UI to the body; nothing in the EHR's DOM is read. */
export const ehr = {
  mountPoint: 'body',
} as const;

/** Our own hosts (the attribute value names the feature; never anything about the patient). */
export const ownHostAttribute = 'data-secure-outreach';
