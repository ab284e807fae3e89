/**
 * Instant PromQL queries over Prometheus's HTTP API. Every failure says why, so the loop can
 * freeze with a reason instead of acting on what it could not see.
 */
export type MetricsProblem = 'PrometheusUnreachable' | 'QueryFailed' | 'NoSeries' | 'StaleMetrics';

export class MetricsUnavailable extends Error {
  readonly reason: MetricsProblem;
  constructor(reason: MetricsProblem, message: string) {
    super(message);
    this.name = 'MetricsUnavailable';
    this.reason = reason;
  }
}

export interface Sample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

interface ApiResponse {
  status: 'success' | 'error';
  error?: string;
  data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

export class PrometheusClient {
  readonly url: string;
  readonly #timeoutMs: number;

  constructor(url: string, timeoutMs = 5000) {
    this.url = url.replace(/\/+$/, '');
    this.#timeoutMs = timeoutMs;
  }

  async query(expr: string): Promise<Sample[]> {
    let res: Response;
    try {
      res = await fetch(`${this.url}/api/v1/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ query: expr }),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      throw new MetricsUnavailable(
        'PrometheusUnreachable',
        `Prometheus at ${this.url} is unreachable: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    const body = (await res
      .json()
      .catch(() => ({ status: 'error', error: `HTTP ${String(res.status)}` }))) as ApiResponse;
    if (body.status !== 'success' || body.data === undefined)
      throw new MetricsUnavailable('QueryFailed', `query failed: ${body.error ?? 'no data'}: ${expr}`);
    return body.data.result.map((r) => ({ labels: r.metric, value: Number(r.value[1]) }));
  }

  /** One number: the first sample's value, or `fallback` when the result is empty or not finite. */
  async scalar(expr: string, fallback = 0): Promise<number> {
    const [first] = await this.query(expr);
    return first !== undefined && Number.isFinite(first.value) ? first.value : fallback;
  }
}
