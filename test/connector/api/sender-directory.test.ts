// What counts as a published DKIM key when a sender is verified: a DKIM1 record with a public key, not a revoked one.
import { expect, it } from 'vitest';
import { isDkimKeyRecord } from '../../../connector/api/sender-directory.js';

it('accepts a DKIM key record and refuses revoked, foreign and malformed ones', () => {
  expect(isDkimKeyRecord('v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxyz+/=')).toBe(true);
  expect(isDkimKeyRecord('k=rsa; p=MIIBIjANBgkq hkiG9w0B')).toBe(true);
  expect(isDkimKeyRecord('v=DKIM1; k=rsa; p=')).toBe(false);
  expect(isDkimKeyRecord('v=spf1 include:_spf.example.org ~all')).toBe(false);
  expect(isDkimKeyRecord('v=DKIM2; p=MIIB')).toBe(false);
  expect(isDkimKeyRecord('v=DKIM1; p=<script>')).toBe(false);
});
