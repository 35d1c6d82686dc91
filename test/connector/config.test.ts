// The configuration: OUTREACH_CONSENT_FOLLOW_MS, and every bad setting refused with INVALID_CONFIG naming the variable it came from.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../connector/config.js';
import { OutreachError } from '../../connector/errors.js';

const home = '/tmp/outreach-config-only';

/** The error loadConfig throws for `value`, or undefined when it parses. */
function rejection(value: string): OutreachError | undefined {
  try {
    loadConfig({ OUTREACH_HOME: home, OUTREACH_CONSENT_FOLLOW_MS: value });
    return undefined;
  } catch (err) {
    if (err instanceof OutreachError) return err;
    throw err;
  }
}

describe('OUTREACH_CONSENT_FOLLOW_MS', () => {
  it('follows the authorization history every 2000 ms when unset', () => {
    expect(loadConfig({ OUTREACH_HOME: home }).consentFollowMs).toBe(2000);
  });

  it('reads 0 as do not follow, and any whole number of ms from 100 to 60000', () => {
    expect(loadConfig({ OUTREACH_HOME: home, OUTREACH_CONSENT_FOLLOW_MS: '0' }).consentFollowMs).toBe(0);
    expect(loadConfig({ OUTREACH_HOME: home, OUTREACH_CONSENT_FOLLOW_MS: '100' }).consentFollowMs).toBe(100);
    expect(loadConfig({ OUTREACH_HOME: home, OUTREACH_CONSENT_FOLLOW_MS: '60000' }).consentFollowMs).toBe(60_000);
  });

  it('refuses a value out of range or not a whole number with INVALID_CONFIG naming the variable', () => {
    // An empty value in particular is refused rather than read as 0, which would silently turn following off.
    for (const value of ['99', '60001', '-5', '1.5', 'fast', '']) {
      const err = rejection(value);
      expect(err, `value ${JSON.stringify(value)}`).toBeInstanceOf(OutreachError);
      expect(err!.code).toBe('INVALID_CONFIG');
      expect(err!.message).toMatch(/^OUTREACH_CONSENT_FOLLOW_MS /);
      expect(err!.details).toEqual({ field: 'OUTREACH_CONSENT_FOLLOW_MS' });
    }
    expect(rejection('99')!.message).toBe('OUTREACH_CONSENT_FOLLOW_MS must be 0 (do not follow) or 100 to 60000 ms');
    expect(rejection('fast')!.message).toBe('OUTREACH_CONSENT_FOLLOW_MS must be a whole number of milliseconds');
  });
});

describe('a bad setting', () => {
  const refusal = (env: Record<string, string>) => {
    try {
      loadConfig({ OUTREACH_HOME: home, ...env });
    } catch (err) {
      if (err instanceof OutreachError) return err;
      throw err;
    }
    throw new Error('expected INVALID_CONFIG');
  };

  it('is refused with INVALID_CONFIG naming the environment variable it came from, and the reason', () => {
    for (const [variable, value, reason] of [
      ['OUTREACH_MX_CONNECTIONS', '1000', /100/],
      ['OUTREACH_SENDER_THREADS', 'two', /number/i],
      ['OUTREACH_API_PORT', '70000', /65535/],
      ['SF_LOGIN_URL', 'not a url', /URL/i],
    ] as const) {
      const err = refusal({ [variable]: value });
      expect([err.code, err.details]).toEqual(['INVALID_CONFIG', { field: variable }]);
      expect(err.message.startsWith(`${variable} `)).toBe(true);
      expect(err.message).toMatch(reason);
    }
  });

  it('names the missing webhook secret when webhook endpoints are set', () => {
    const err = refusal({ OUTREACH_WEBHOOK_URLS: 'https://crm.example.org/hooks' });
    expect([err.code, err.message, err.details]).toEqual(['INVALID_CONFIG', 'OUTREACH_WEBHOOK_SECRET must be set when OUTREACH_WEBHOOK_URLS is', { field: 'OUTREACH_WEBHOOK_SECRET' }]);
  });
});
