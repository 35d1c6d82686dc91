// Prometheus metrics of the API (prom-client, one registry per server): request latency by route name and status, never a URL.
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';

export interface ApiMetrics {
  registry: Registry;
  /** Records one finished request; `route` is the contract's route name (or `unmatched`), never a path with values. */
  observe(route: string, method: string, status: number, seconds: number): void;
}

export function createApiMetrics(options: { defaultMetrics?: boolean } = {}): ApiMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'outreach_' });
  const duration = new Histogram({
    name: 'outreach_api_request_duration_seconds',
    help: 'API request latency by route name, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  return {
    registry,
    observe: (route, method, status, seconds) => duration.observe({ route, method, status: String(status) }, seconds),
  };
}
