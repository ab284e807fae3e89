/**
 * AutoGLM / Tuning: the live serving parameters in force on each node over time, whether the
 * requests meet their latency objectives, and what response compression costs and saves; the
 * tuning loop's decisions are drawn over every panel as annotations.
 *
 * The knobs come from the tuning schema (crds/tuning.ts), so a new parameter gets its panel
 * without an edit here: the server publishes each numeric one as `autoglm_tuning_value{param}`
 * and the others together as labels of `autoglm_tuning_info` (server/src/http/observability/metrics.ts).
 */
import { AnnotationQueryBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { ServingParamsSchema } from '../crds/tuning.ts';
import { tuningLabelName } from '../server/src/http/observability/metrics.ts';
import { BUCKETS } from '../server/src/http/observability/series.ts';
import {
  DATASOURCE,
  buildDashboard,
  quantile,
  rate,
  scopeVariables,
  sel,
  type PanelSpec,
  type DashboardModel,
  type RowSpec,
  type VariableSpec,
} from './common.ts';

/**
 * The operator's tuning decisions, as annotations: the tuning loop (operator/src/aiops) counts
 * them in `autoglm_operator_tuning_decisions_total{namespace, deployment, knob, node, applied}`.
 * A label set's first decision creates its series at 1, which increase() cannot see, so series
 * that did not exist one interval earlier count as decisions too.
 * Those `namespace`/`deployment` labels name the AutoGLMDeployment, not the operator's pod: the
 * operator's scrape must keep them (`honorLabels: true`), or Prometheus renames them `exported_*`.
 */
const DECISIONS =
  'autoglm_operator_tuning_decisions_total{namespace=~"$namespace", deployment=~"$deployment", node=~"$node"}';
export const TUNING_DECISIONS_EXPR =
  `sum by (namespace, deployment, node, knob, applied) ((increase(${DECISIONS}[$__interval]) > 0)` +
  ` or (${DECISIONS} unless ${DECISIONS} offset $__interval))`;

const BY_NODE = 'namespace, deployment, node';
const NODE = '{{node}} ({{deployment}})';

/**
 * A threshold variable for an SLO: its values must be bucket bounds of the histogram (the
 * fraction under a threshold is read from the `le` bucket). Whole numbers are left out:
 * prom-client writes `le="1"` where Prometheus 3 stores `le="1.0"`, so no one spelling of
 * them matches both; fractional bounds read the same in both.
 */
function sloVariable(
  name: string,
  label: string,
  description: string,
  bounds: readonly number[],
  current: number,
): VariableSpec {
  const values = bounds.filter((b) => !Number.isInteger(b)).map(String);
  if (!values.includes(String(current)))
    throw new Error(`${name}: ${String(current)} is not a fractional bucket bound of the histogram`);
  return { kind: 'custom', name, label, description, values, current: String(current) };
}

const VARIABLES: VariableSpec[] = [
  ...scopeVariables('autoglm_num_requests_running'),
  sloVariable(
    'ttft_slo',
    'TTFT SLO (s)',
    'Time-to-first-token objective, in seconds: a bucket bound of autoglm_time_to_first_token_seconds.',
    BUCKETS.ttft,
    0.5,
  ),
  sloVariable(
    'itl_slo',
    'ITL SLO (s)',
    'Inter-token latency objective, in seconds: a bucket bound of autoglm_inter_token_latency_seconds.',
    BUCKETS.itl,
    0.05,
  ),
];

type KnobSchema = { readonly type?: unknown; readonly description?: unknown };

function knobPanel(param: string, schema: KnobSchema): PanelSpec {
  const description = typeof schema.description === 'string' ? `${schema.description} ` : '';
  if (schema.type === 'integer' || schema.type === 'number') {
    return {
      title: param,
      description: `${description}(autoglm_tuning_value{param="${param}"})`,
      unit: param.endsWith('Ms') ? 'ms' : 'short',
      stepped: true,
      width: 8,
      queries: [
        {
          expr: `max by (${BY_NODE}, pod) (${sel('autoglm_tuning_value', `param="${param}"`)})`,
          legend: '{{pod}} on {{node}}',
        },
      ],
    };
  }
  const label = tuningLabelName(param);
  return {
    title: param,
    description: `${description}One series per value in force (autoglm_tuning_info{${label}}).`,
    unit: 'short',
    stepped: true,
    width: 8,
    queries: [
      {
        expr: `max by (${BY_NODE}, pod, ${label}) (${sel('autoglm_tuning_info')})`,
        legend: `{{${label}}}: {{pod}} on {{node}}`,
      },
    ],
  };
}

function knobs(): RowSpec {
  const panels = Object.entries(ServingParamsSchema.properties).map(([param, schema]) =>
    knobPanel(param, schema as KnobSchema),
  );
  panels.push({
    title: 'Tuning updates rejected',
    description:
      'Tuning files the server refused or could not read, by reason (autoglm_tuning_errors_total); the ' +
      'server keeps the last good values.',
    unit: 'short',
    min: 0,
    width: 8,
    queries: [
      {
        expr: `sum by (${BY_NODE}, param) (increase(${sel('autoglm_tuning_errors_total')}[$__rate_interval]))`,
        legend: `{{param}} ${NODE}`,
      },
    ],
  });
  return { title: 'Live parameters', panels };
}

/** The share of requests whose `histogram` observation is at most `$<variable>`. */
function attainment(histogram: string, variable: string, by: string): string {
  return (
    `sum by (${by}) (${rate(`${histogram}_bucket`, `le="$${variable}"`)}) / ` +
    `sum by (${by}) (${rate(`${histogram}_count`)})`
  );
}

const slo: RowSpec = {
  title: 'Service level objectives',
  panels: [
    {
      title: 'Requests within the TTFT objective',
      description:
        'Share of requests whose time to first token is at most $ttft_slo s, per node and over the ' +
        'deployment (autoglm_time_to_first_token_seconds buckets).',
      unit: 'percentunit',
      min: 0,
      max: 1,
      queries: [
        { expr: attainment('autoglm_time_to_first_token_seconds', 'ttft_slo', BY_NODE), legend: NODE },
        {
          expr: attainment('autoglm_time_to_first_token_seconds', 'ttft_slo', 'namespace, deployment'),
          legend: 'all nodes ({{deployment}})',
        },
      ],
    },
    {
      title: 'Tokens within the inter-token latency objective',
      description:
        'Share of inter-token gaps of at most $itl_slo s, per node and over the deployment ' +
        '(autoglm_inter_token_latency_seconds buckets).',
      unit: 'percentunit',
      min: 0,
      max: 1,
      queries: [
        { expr: attainment('autoglm_inter_token_latency_seconds', 'itl_slo', BY_NODE), legend: NODE },
        {
          expr: attainment('autoglm_inter_token_latency_seconds', 'itl_slo', 'namespace, deployment'),
          legend: 'all nodes ({{deployment}})',
        },
      ],
    },
  ],
};

const BY_ENCODING = `${BY_NODE}, encoding, level`;
const ENCODING = '{{encoding}}:{{level}} on {{node}}';

const compression: RowSpec = {
  title: 'Response compression',
  panels: [
    {
      title: 'Response bytes before and after compression',
      description:
        'Response body bytes per second before compression (autoglm_response_bytes_uncompressed_total) ' +
        'and as written to the socket (autoglm_response_bytes_sent_total).',
      unit: 'Bps',
      min: 0,
      queries: [
        {
          expr: `sum by (${BY_ENCODING}) (${rate('autoglm_response_bytes_uncompressed_total')})`,
          legend: `before ${ENCODING}`,
        },
        {
          expr: `sum by (${BY_ENCODING}) (${rate('autoglm_response_bytes_sent_total')})`,
          legend: `sent ${ENCODING}`,
        },
      ],
    },
    {
      title: 'Compression ratio',
      description: 'Bytes sent per byte before compression: 1 means no saving.',
      unit: 'percentunit',
      min: 0,
      queries: [
        {
          expr:
            `sum by (${BY_NODE}) (${rate('autoglm_response_bytes_sent_total')}) / ` +
            `sum by (${BY_NODE}) (${rate('autoglm_response_bytes_uncompressed_total')})`,
          legend: NODE,
        },
      ],
    },
    {
      title: 'Time spent compressing',
      description:
        'Compressor time per second of wall time, i.e. the share of one core spent compressing ' +
        '(autoglm_compression_seconds_sum).',
      unit: 'percentunit',
      min: 0,
      queries: [
        {
          expr: `sum by (${BY_ENCODING}) (${rate('autoglm_compression_seconds_sum')})`,
          legend: ENCODING,
        },
      ],
    },
    {
      title: 'Compression time per response p90',
      description:
        'The 90th percentile of the time spent compressing one response (autoglm_compression_seconds).',
      unit: 's',
      queries: [{ expr: quantile(0.9, 'autoglm_compression_seconds', BY_ENCODING), legend: ENCODING }],
    },
  ],
};

function decisions(): AnnotationQueryBuilder {
  return new AnnotationQueryBuilder()
    .name('Tuning decisions')
    .datasource(DATASOURCE)
    .enable(true)
    .iconColor('orange')
    .expr(TUNING_DECISIONS_EXPR)
    .titleFormat('{{knob}} on {{node}}')
    .textFormat('{{namespace}}/{{deployment}}: applied={{applied}}')
    .tagKeys('knob,node,applied');
}

export function tuningDashboard(): DashboardModel {
  return buildDashboard({
    uid: 'autoglm-tuning',
    title: 'AutoGLM / Tuning',
    description:
      'The live serving parameters on each node, latency objectives, and response compression, with ' +
      "the operator's tuning decisions as annotations.",
    variables: VARIABLES,
    rows: [knobs(), slo, compression],
    annotations: [decisions()],
  });
}
