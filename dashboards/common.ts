/**
 * What the three dashboards share: the Prometheus data source variable, the label conventions
 * behind the `namespace`, `deployment` and `node` variables, and small builders on top of the
 * Grafana Foundation SDK that number panels and queries the same way every time (the JSON is
 * committed, so the output must be deterministic).
 *
 * Label conventions. The server's own series carry `model` and `node` (NODE_NAME from the
 * downward API). The scrape adds the target labels:
 *   - `namespace`: the pod's namespace (the Prometheus Operator adds it to every target);
 *   - `deployment`: the AutoGLMDeployment's name, relabeled from the pod label
 *     `serving.autoglm.io/deployment` (for the operator's own pods: the operator's Deployment);
 *   - `pod`: the pod (added by the Prometheus Operator).
 * For the operator, whose series carry no `node`, the scrape also sets `node` from
 * `__meta_kubernetes_pod_node_name`. Every variable offers "All", whose value is `.*`: a
 * `=~".*"` matcher also matches a series without that label, so the panels still show data
 * where a scrape sets none of these target labels (a server run by hand, say).
 */
import {
  CustomVariableBuilder,
  DashboardBuilder,
  DashboardCursorSync,
  DashboardLinkBuilder,
  DashboardLinkType,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  RowBuilder,
  VariableRefresh,
  VariableSort,
  type AnnotationQueryBuilder,
  type Dashboard,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import {
  LegendDisplayMode,
  LegendPlacement,
  LineInterpolation,
  SortOrder,
  TooltipDisplayMode,
  VizLegendOptionsBuilder,
  VizTooltipOptionsBuilder,
} from '@grafana/grafana-foundation-sdk/common';
import { PanelBuilder as TimeseriesBuilder } from '@grafana/grafana-foundation-sdk/timeseries';

/**
 * A dashboard in Grafana's classic JSON model. The SDK marks it deprecated in favour of the v2
 * schema, but the classic model is what file provisioning and the Grafana Helm chart's sidecar
 * load on every Grafana release in use (docs/adr/0003-dashboards-as-code.md).
 */
// eslint-disable-next-line @typescript-eslint/no-deprecated -- see above
export type DashboardModel = Dashboard;

/** Every panel, query and variable uses the data source the `datasource` variable picks. */
export const DATASOURCE = { type: 'prometheus', uid: '${datasource}' } as const;

/** The matchers that scope a query to the selected namespace, deployment and node. */
export const SCOPE = 'namespace=~"$namespace", deployment=~"$deployment", node=~"$node"';

/** `metric{<scope>, extra}`. */
export function sel(metric: string, extra?: string): string {
  return `${metric}{${SCOPE}${extra === undefined ? '' : `, ${extra}`}}`;
}

/** `rate(metric{<scope>, extra}[$__rate_interval])`. */
export function rate(metric: string, extra?: string): string {
  return `rate(${sel(metric, extra)}[$__rate_interval])`;
}

/** The q-quantile of a histogram over the selection, per `by` (which must not name `le`). */
export function quantile(q: number, histogram: string, by: string, extra?: string): string {
  return `histogram_quantile(${String(q)}, sum by (le, ${by}) (${rate(`${histogram}_bucket`, extra)}))`;
}

export const PERCENTILES = [0.5, 0.9, 0.99] as const;

/** p50, p90 and p99 of a histogram, one query each, per `by`. */
export function percentiles(histogram: string, by: string, legend: string): Query[] {
  return PERCENTILES.map((q) => ({
    expr: quantile(q, histogram, by),
    legend: [`p${String(Math.round(q * 100))}`, legend].filter((s) => s !== '').join(' '),
  }));
}

export interface Query {
  readonly expr: string;
  /** Grafana's legend template, e.g. `{{deployment}} on {{node}}`. */
  readonly legend: string;
}

export interface PanelSpec {
  readonly title: string;
  readonly description: string;
  readonly unit: string;
  readonly queries: readonly Query[];
  readonly min?: number;
  readonly max?: number;
  /** Draw steps, for values that change in jumps (the tuning knobs). */
  readonly stepped?: boolean;
  /** Grid width, out of 24; 12 unless set. */
  readonly width?: number;
}

export interface RowSpec {
  readonly title: string;
  readonly panels: readonly PanelSpec[];
}

export interface DashboardSpec {
  readonly uid: string;
  readonly title: string;
  readonly description: string;
  readonly variables: readonly VariableSpec[];
  readonly rows: readonly RowSpec[];
  readonly annotations?: readonly AnnotationQueryBuilder[];
}

export type VariableSpec =
  | { readonly kind: 'labels'; readonly name: string; readonly label: string; readonly query: string }
  | {
      readonly kind: 'custom';
      readonly name: string;
      readonly label: string;
      readonly description: string;
      readonly values: readonly string[];
      readonly current: string;
    };

/**
 * `namespace`, `deployment` and `node`, each narrowed by the ones before it, from the label
 * values of `anchor` (a series that every scraped target exports from its start).
 */
export function scopeVariables(anchor: string): VariableSpec[] {
  const labels = (name: string, label: string, matchers: string): VariableSpec => ({
    kind: 'labels',
    name,
    label,
    query: `label_values(${anchor}${matchers === '' ? '' : `{${matchers}}`}, ${name})`,
  });
  return [
    labels('namespace', 'Namespace', ''),
    labels('deployment', 'Deployment', 'namespace=~"$namespace"'),
    labels('node', 'Node', 'namespace=~"$namespace", deployment=~"$deployment"'),
  ];
}

const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

function timeseries(p: PanelSpec, id: number): TimeseriesBuilder {
  const b = new TimeseriesBuilder()
    .id(id)
    .title(p.title)
    .description(p.description)
    .datasource(DATASOURCE)
    .unit(p.unit)
    .span(p.width ?? 12)
    .height(8)
    .fillOpacity(10)
    .lineInterpolation(p.stepped === true ? LineInterpolation.StepAfter : LineInterpolation.Linear)
    .legend(
      new VizLegendOptionsBuilder()
        .showLegend(true)
        .displayMode(LegendDisplayMode.List)
        .placement(LegendPlacement.Bottom)
        .calcs([]),
    )
    .tooltip(new VizTooltipOptionsBuilder().mode(TooltipDisplayMode.Multi).sort(SortOrder.Descending));
  if (p.min !== undefined) b.min(p.min);
  if (p.max !== undefined) b.max(p.max);
  p.queries.forEach((q, i) => {
    b.withTarget(
      new DataqueryBuilder()
        .refId(LETTERS[i] ?? `Q${String(i)}`)
        .datasource(DATASOURCE)
        .expr(q.expr)
        .legendFormat(q.legend)
        .range(),
    );
  });
  return b;
}

function variable(v: VariableSpec) {
  if (v.kind === 'custom') {
    return new CustomVariableBuilder(v.name)
      .label(v.label)
      .description(v.description)
      .values(v.values.join(','))
      .current({ text: v.current, value: v.current });
  }
  return new QueryVariableBuilder(v.name)
    .label(v.label)
    .datasource(DATASOURCE)
    .query(v.query)
    .definition(v.query)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc)
    .multi(true)
    .includeAll(true)
    .allValue('.*')
    .current({ text: 'All', value: '$__all' });
}

/** The dashboard: data source variable first, then the spec's variables, rows and panels in order. */
export function buildDashboard(spec: DashboardSpec): DashboardModel {
  // eslint-disable-next-line @typescript-eslint/no-deprecated -- the classic model; see DashboardModel
  const b = new DashboardBuilder(spec.title)
    .uid(spec.uid)
    .description(spec.description)
    .tags(['autoglm'])
    .timezone('browser')
    .time({ from: 'now-1h', to: 'now' })
    .refresh('30s')
    .tooltip(DashboardCursorSync.Crosshair)
    .link(
      new DashboardLinkBuilder('AutoGLM')
        .type(DashboardLinkType.Dashboards)
        .tags(['autoglm'])
        .asDropdown(true)
        .includeVars(true)
        .keepTime(true),
    )
    .withVariable(new DatasourceVariableBuilder('datasource').label('Data source').type('prometheus'));
  for (const v of spec.variables) b.withVariable(variable(v));
  for (const a of spec.annotations ?? []) b.annotation(a);
  let id = 0;
  for (const row of spec.rows) {
    b.withRow(new RowBuilder(row.title).id(++id));
    for (const p of row.panels) b.withPanel(timeseries(p, ++id));
  }
  return b.build();
}
