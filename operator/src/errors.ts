/**
 * Every reason the reconciler reports with `Degraded=True`, and whether a retry with backoff can
 * clear it. The others clear only through a change that triggers a reconcile by itself (a spec
 * edit, a pod event).
 */
export const PROBLEM_REASONS = {
  SecretNotFound: { retry: true },
  PVCNotFound: { retry: true },
  ApplyRejected: { retry: false },
  ServerCrashLoop: { retry: false },
  ProgressDeadlineExceeded: { retry: false },
} as const;

export type ProblemReason = keyof typeof PROBLEM_REASONS;

/** A failed Kubernetes API call, with the status the API server answered (0: no answer). */
export class KubeApiError extends Error {
  readonly status: number;
  readonly apiReason: string;
  constructor(status: number, apiReason: string, message: string) {
    super(message);
    this.name = 'KubeApiError';
    this.status = status;
    this.apiReason = apiReason;
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof KubeApiError && err.status === 404;
