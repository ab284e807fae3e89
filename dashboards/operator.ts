/**
 * AutoGLM / Operator: the control plane's health, from the series in operator/src/metrics.ts
 * (named as controller-runtime names its own). The operator's series carry no deployment or
 * node of their own: here `namespace`, `deployment` and `node` are the scrape's target labels,
 * and select operator replicas (where the operator runs), not AutoGLMDeployments.
 */
import {
  buildDashboard,
  percentiles,
  quantile,
  rate,
  scopeVariables,
  sel,
  type DashboardModel,
  type RowSpec,
} from './common.ts';

const REPLICA = '{{pod}}';

const reconciles: RowSpec = {
  title: 'Reconciles',
  panels: [
    {
      title: 'Reconciles by result',
      description:
        'Reconciles per second by result: success, requeue (a problem recorded in status, retried with ' +
        'backoff), error (retried with backoff) or terminal (autoglm_operator_reconcile_total).',
      unit: 'ops',
      min: 0,
      queries: [
        {
          expr: `sum by (result) (${rate('autoglm_operator_reconcile_total')})`,
          legend: '{{result}}',
        },
      ],
    },
    {
      title: 'Reconcile errors and retries',
      description:
        'Reconciles per second that did not succeed, by replica and result, and their share of all reconciles.',
      unit: 'ops',
      min: 0,
      queries: [
        {
          expr: `sum by (pod, result) (${rate('autoglm_operator_reconcile_total', 'result!="success"')})`,
          legend: `{{result}} ${REPLICA}`,
        },
        {
          expr:
            `sum(${rate('autoglm_operator_reconcile_total', 'result!="success"')}) / ` +
            `sum(${rate('autoglm_operator_reconcile_total')})`,
          legend: 'share not succeeded',
        },
      ],
    },
    {
      title: 'Reconcile latency',
      description: 'Time per reconcile, all results (autoglm_operator_reconcile_time_seconds).',
      unit: 's',
      queries: percentiles('autoglm_operator_reconcile_time_seconds', 'namespace', ''),
    },
    {
      title: 'Reconcile latency p90 by result',
      description: 'The 90th percentile of autoglm_operator_reconcile_time_seconds for each result.',
      unit: 's',
      queries: [
        { expr: quantile(0.9, 'autoglm_operator_reconcile_time_seconds', 'result'), legend: '{{result}}' },
      ],
    },
  ],
};

const state: RowSpec = {
  title: 'Queue, leader and applies',
  panels: [
    {
      title: 'Work queue depth',
      description: 'Keys waiting in the work queue, by replica (autoglm_operator_workqueue_depth).',
      unit: 'short',
      min: 0,
      queries: [{ expr: `max by (pod) (${sel('autoglm_operator_workqueue_depth')})`, legend: REPLICA }],
    },
    {
      title: 'Leader',
      description:
        '1 while a replica holds the leader lease (autoglm_operator_leader); the total should be 1 at all times.',
      unit: 'short',
      min: 0,
      queries: [
        { expr: `max by (pod) (${sel('autoglm_operator_leader')})`, legend: REPLICA },
        { expr: `sum(${sel('autoglm_operator_leader')})`, legend: 'leaders' },
      ],
    },
    {
      title: 'Server-side applies by kind',
      description: 'Server-side applies sent per second, by child kind (autoglm_operator_apply_total).',
      unit: 'ops',
      min: 0,
      width: 24,
      queries: [{ expr: `sum by (kind) (${rate('autoglm_operator_apply_total')})`, legend: '{{kind}}' }],
    },
  ],
};

export function operatorDashboard(): DashboardModel {
  return buildDashboard({
    uid: 'autoglm-operator',
    title: 'AutoGLM / Operator',
    description:
      'Reconciles, errors, latency, work queue, leader election and applies of the AutoGLM operator.',
    variables: scopeVariables('autoglm_operator_leader'),
    rows: [reconciles, state],
  });
}
