// Reading the Contact or Lead a Lightning URL shows.
import { describe, expect, it } from 'vitest';
import { recordRoute } from '../../extension/page/record-route.js';

describe('recordRoute', () => {
  it('reads Contact and Lead record pages with 15- and 18-character ids', () => {
    expect(recordRoute('https://acme.lightning.force.com/lightning/r/Contact/003Dn00000A1b2cAAB/view')).toEqual({ object: 'Contact', recordId: '003Dn00000A1b2cAAB' });
    expect(recordRoute('https://acme.lightning.force.com/lightning/r/Lead/00QDn00000A1b2c/view')).toEqual({ object: 'Lead', recordId: '00QDn00000A1b2c' });
  });

  it('ignores list views, other objects, related lists and malformed ids', () => {
    expect(recordRoute('https://acme.lightning.force.com/lightning/o/Contact/list')).toBeNull();
    expect(recordRoute('https://acme.lightning.force.com/lightning/r/Account/001Dn00000A1b2cAAB/view')).toBeNull();
    expect(recordRoute('https://acme.lightning.force.com/lightning/r/Contact/003Dn00000A1b2cAAB/related/Cases/view')).toBeNull();
    expect(recordRoute('https://acme.lightning.force.com/lightning/r/Contact/003-bad/view')).toBeNull();
  });
});
