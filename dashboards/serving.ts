/**
 * AutoGLM / Serving: what users of an AutoGLMDeployment feel (latency percentiles, throughput,
 * outcomes) and what the engine is doing (batch, queue, KV cache), per deployment and per node.
 * The series are the server's (server/src/http/observability/metrics.ts, docs/metrics.md).
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

const BY_DEPLOYMENT = 'namespace, deployment';
const DEPLOYMENT = '{{namespace}}/{{deployment}}';
const BY_NODE = 'namespace, deployment, node';
const NODE = '{{node}} ({{deployment}})';

const latency: RowSpec = {
  title: 'Latency',
  panels: [
    {
      title: 'Time to first token',
      description:
        'Arrival to first generated token, queueing and prefill included ' +
        '(autoglm_time_to_first_token_seconds).',
      unit: 's',
      queries: percentiles('autoglm_time_to_first_token_seconds', BY_DEPLOYMENT, DEPLOYMENT),
    },
    {
      title: 'Inter-token latency',
      description:
        'Time between two consecutive tokens of one request (autoglm_inter_token_latency_seconds).',
      unit: 's',
      queries: percentiles('autoglm_inter_token_latency_seconds', BY_DEPLOYMENT, DEPLOYMENT),
    },
    {
      title: 'End-to-end request latency',
      description: 'Arrival to finish (autoglm_e2e_request_latency_seconds).',
      unit: 's',
      queries: percentiles('autoglm_e2e_request_latency_seconds', BY_DEPLOYMENT, DEPLOYMENT),
    },
    {
      title: 'Queue time',
      description:
        'Time a request waits before it joins the running batch (autoglm_request_queue_time_seconds).',
      unit: 's',
      queries: percentiles('autoglm_request_queue_time_seconds', BY_DEPLOYMENT, DEPLOYMENT),
    },
  ],
};

const load: RowSpec = {
  title: 'Throughput and load',
  panels: [
    {
      title: 'Tokens per second',
      description:
        'Generated tokens, counted as they are produced (autoglm_generation_tokens_total), and prompt ' +
        'tokens, counted when a request finishes (autoglm_prompt_tokens_total).',
      unit: 'short',
      min: 0,
      queries: [
        {
          expr: `sum by (${BY_DEPLOYMENT}) (${rate('autoglm_generation_tokens_total')})`,
          legend: `output ${DEPLOYMENT}`,
        },
        {
          expr: `sum by (${BY_DEPLOYMENT}) (${rate('autoglm_prompt_tokens_total')})`,
          legend: `prompt ${DEPLOYMENT}`,
        },
      ],
    },
    {
      title: 'Requests running and waiting',
      description:
        'Sequences in the running batch (autoglm_num_requests_running) and requests queued for it ' +
        '(autoglm_num_requests_waiting), after the latest engine step.',
      unit: 'short',
      min: 0,
      queries: [
        {
          expr: `sum by (${BY_DEPLOYMENT}) (${sel('autoglm_num_requests_running')})`,
          legend: `running ${DEPLOYMENT}`,
        },
        {
          expr: `sum by (${BY_DEPLOYMENT}) (${sel('autoglm_num_requests_waiting')})`,
          legend: `waiting ${DEPLOYMENT}`,
        },
      ],
    },
    {
      title: 'KV cache usage',
      description: "Share of each server's KV cache in use, 0 to 1 (autoglm_kv_cache_usage_perc).",
      unit: 'percentunit',
      min: 0,
      max: 1,
      queries: [
        {
          expr: `max by (${BY_NODE}, pod) (${sel('autoglm_kv_cache_usage_perc')})`,
          legend: '{{pod}} on {{node}}',
        },
      ],
    },
    {
      title: 'Batch size per engine step',
      description:
        'Sequences decoded together in one engine step (autoglm_batch_size): the mean, and the p90 ' +
        'of the steps in the window. Idle steps are not counted.',
      unit: 'short',
      min: 0,
      queries: [
        {
          expr:
            `sum by (${BY_DEPLOYMENT}) (${rate('autoglm_batch_size_sum')}) / ` +
            `sum by (${BY_DEPLOYMENT}) (${rate('autoglm_batch_size_count')})`,
          legend: `mean ${DEPLOYMENT}`,
        },
        {
          expr: quantile(0.9, 'autoglm_batch_size', BY_DEPLOYMENT),
          legend: `p90 ${DEPLOYMENT}`,
        },
      ],
    },
  ],
};

const outcomes: RowSpec = {
  title: 'Outcomes',
  panels: [
    {
      title: 'Finished requests by finish reason',
      description:
        'Requests finished per second by finished_reason: stop, length, abort or error ' +
        '(autoglm_request_success_total).',
      unit: 'reqps',
      min: 0,
      queries: [
        {
          expr: `sum by (${BY_DEPLOYMENT}, finished_reason) (${rate('autoglm_request_success_total')})`,
          legend: `{{finished_reason}} ${DEPLOYMENT}`,
        },
      ],
    },
    {
      title: 'Errors by code',
      description:
        'Errors per second by catalog code (server/src/errors.ts) or OpenAI error code (autoglm_errors_total).',
      unit: 'reqps',
      min: 0,
      queries: [
        {
          expr: `sum by (${BY_DEPLOYMENT}, code) (${rate('autoglm_errors_total')})`,
          legend: `{{code}} ${DEPLOYMENT}`,
        },
      ],
    },
    {
      title: 'HTTP requests by status',
      description: 'HTTP requests per second by route pattern and status code (autoglm_http_requests_total).',
      unit: 'reqps',
      min: 0,
      queries: [
        {
          expr: `sum by (${BY_DEPLOYMENT}, route, status) (${rate('autoglm_http_requests_total')})`,
          legend: `{{status}} {{route}} ${DEPLOYMENT}`,
        },
      ],
    },
    {
      title: 'Preemptions',
      description:
        'Sequences evicted from the running batch to free KV cache, per second (autoglm_num_preemptions_total).',
      unit: 'short',
      min: 0,
      queries: [
        {
          expr: `sum by (${BY_NODE}) (${rate('autoglm_num_preemptions_total')})`,
          legend: NODE,
        },
      ],
    },
  ],
};

const perNode: RowSpec = {
  title: 'Per node',
  panels: [
    {
      title: 'Output tokens per second by node',
      description: 'Generated tokens per second on each node (autoglm_generation_tokens_total).',
      unit: 'short',
      min: 0,
      queries: [{ expr: `sum by (${BY_NODE}) (${rate('autoglm_generation_tokens_total')})`, legend: NODE }],
    },
    {
      title: 'Requests running and waiting by node',
      description: 'autoglm_num_requests_running and autoglm_num_requests_waiting on each node.',
      unit: 'short',
      min: 0,
      queries: [
        { expr: `sum by (${BY_NODE}) (${sel('autoglm_num_requests_running')})`, legend: `running ${NODE}` },
        { expr: `sum by (${BY_NODE}) (${sel('autoglm_num_requests_waiting')})`, legend: `waiting ${NODE}` },
      ],
    },
    {
      title: 'Time to first token p90 by node',
      description: 'The 90th percentile of autoglm_time_to_first_token_seconds on each node.',
      unit: 's',
      queries: [{ expr: quantile(0.9, 'autoglm_time_to_first_token_seconds', BY_NODE), legend: NODE }],
    },
    {
      title: 'Inter-token latency p90 by node',
      description: 'The 90th percentile of autoglm_inter_token_latency_seconds on each node.',
      unit: 's',
      queries: [{ expr: quantile(0.9, 'autoglm_inter_token_latency_seconds', BY_NODE), legend: NODE }],
    },
  ],
};

export function servingDashboard(): DashboardModel {
  return buildDashboard({
    uid: 'autoglm-serving',
    title: 'AutoGLM / Serving',
    description:
      'Latency, throughput, load and outcomes of AutoGLM inference servers, per deployment and per node.',
    variables: scopeVariables('autoglm_num_requests_running'),
    rows: [latency, load, outcomes, perNode],
  });
}
