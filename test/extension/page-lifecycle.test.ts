// @vitest-environment happy-dom
// Following Lightning's page life: waiting for progressive rendering with a time limit, SPA navigation, and features restarted per page view.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runFeatures } from '../../extension/content/feature-runner.js';
import type { ConnectorClient } from '../../extension/connector-client.js';
import type { Feature, FeatureContext } from '../../extension/features/feature.js';
import { watchNavigation } from '../../extension/page/navigation.js';
import { waitFor } from '../../extension/page/wait-for.js';
import { workMeasure } from '../../extension/page/work-timer.js';

const client: ConnectorClient = { call: () => Promise.reject(new Error('not used')) };

afterEach(() => {
  vi.useRealTimers();
  document.body.innerHTML = '';
});

describe('waitFor', () => {
  it('resolves when the element is rendered later', async () => {
    const found = waitFor(document.body, () => document.querySelector('.late'));
    const el = document.createElement('div');
    el.className = 'late';
    document.body.append(el);
    expect(await found).toBe(el);
  });

  it('gives up with null at the time limit instead of observing forever', async () => {
    vi.useFakeTimers();
    const found = waitFor(document.body, () => document.querySelector('.never'), { timeoutMs: 500 });
    vi.advanceTimersByTime(500);
    expect(await found).toBeNull();
  });

  it('gives up with null when the page view ends', async () => {
    const controller = new AbortController();
    const found = waitFor(document.body, () => document.querySelector('.never'), { signal: controller.signal });
    controller.abort();
    expect(await found).toBeNull();
  });

  it('records its observer work as performance measures', async () => {
    performance.clearMeasures(workMeasure);
    const found = waitFor(document.body, () => document.querySelector('.timed'));
    document.body.append(Object.assign(document.createElement('p'), { className: 'timed' }));
    await found;
    expect(performance.getEntriesByName(workMeasure).length).toBeGreaterThan(0);
  });
});

describe('navigation', () => {
  it('reports pushState navigation (seen through DOM churn) and popstate, once per URL', async () => {
    const seen: string[] = [];
    const stop = watchNavigation(window, (url) => seen.push(new URL(url).pathname));
    history.pushState({}, '', '/lightning/r/Contact/003Dn00000A1b2cAAB/view');
    document.body.append(document.createElement('div'));
    await new Promise<void>((resolve) => queueMicrotask(resolve));
    await vi.waitFor(() => expect(seen).toEqual(['/lightning/r/Contact/003Dn00000A1b2cAAB/view']));
    history.pushState({}, '', '/lightning/o/Contact/list');
    window.dispatchEvent(new PopStateEvent('popstate'));
    window.dispatchEvent(new PopStateEvent('popstate'));
    expect(seen).toEqual(['/lightning/r/Contact/003Dn00000A1b2cAAB/view', '/lightning/o/Contact/list']);
    stop();
  });

  it('starts the features that apply to each view and ends the previous view', async () => {
    history.pushState({}, '', '/lightning/o/Contact/list');
    const views: { name: string; path: string; record: string | null; signal: AbortSignal }[] = [];
    const feature = (name: string, applies: Feature['applies']): Feature => ({
      name,
      applies,
      start: (ctx: FeatureContext) => void views.push({ name, path: ctx.url.pathname, record: ctx.record?.recordId ?? null, signal: ctx.signal }),
    });
    const { stop } = runFeatures(window, [feature('everywhere', () => true), feature('records', ({ record }) => record !== null)], client);
    await vi.waitFor(() => expect(views.map((v) => v.name)).toEqual(['everywhere']));
    history.pushState({}, '', '/lightning/r/Lead/00QDn00000A1b2c/view');
    window.dispatchEvent(new PopStateEvent('popstate'));
    await vi.waitFor(() => expect(views).toHaveLength(3));
    expect(views[0]!.signal.aborted).toBe(true);
    expect(views.slice(1).map((v) => [v.name, v.record])).toEqual([
      ['everywhere', '00QDn00000A1b2c'],
      ['records', '00QDn00000A1b2c'],
    ]);
    stop();
    expect(views.every((v) => v.signal.aborted)).toBe(true);
  });
});
