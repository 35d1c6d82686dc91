// The SMART app page's fetch for the shared connector client: the HttpOnly session cookie goes along (same origin only) and the anti-forgery token replaces the bearer token.
import { csrfHeader } from '../../connector/smart/smart-contract.js';

/** Wraps fetch so httpClient's calls carry the app session cookie and `x-outreach-csrf` instead of an Authorization header. */
export function cookieFetch(csrf: string): typeof fetch {
  return (input, init = {}) => {
    const headers = new Headers(init.headers);
    headers.delete('authorization');
    headers.set(csrfHeader, csrf);
    return fetch(input, { ...init, headers, credentials: 'same-origin' });
  };
}
