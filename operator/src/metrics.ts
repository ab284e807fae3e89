/** The operator's own metrics, named as controller-runtime names them (histograms, not summaries). */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconcileTotal: Counter<'result'>;
  readonly reconcileTime: Histogram<'result'>;
  readonly queueDepth: Gauge;
  readonly leader: Gauge;
  readonly applyTotal: Counter<'kind'>;
  readonly decisions: Counter<'namespace' | 'deployment' | 'knob' | 'node' | 'applied'>;
  readonly metricsAvailable: Gauge<'namespace' | 'deployment'>;

  constructor() {
    const registers = [this.registry];
    // process_resident_memory_bytes and friends: what bench:operator and the dashboard read.
    collectDefaultMetrics({ register: this.registry });
    this.reconcileTotal = new Counter({
      name: 'autoglm_operator_reconcile_total',
      help: 'Reconciles by result: success, error, requeue, terminal.',
      labelNames: ['result'],
      registers,
    });
    this.reconcileTime = new Histogram({
      name: 'autoglm_operator_reconcile_time_seconds',
      help: 'Time per reconcile.',
      labelNames: ['result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.queueDepth = new Gauge({
      name: 'autoglm_operator_workqueue_depth',
      help: 'Keys waiting in the work queue.',
      registers,
    });
    this.leader = new Gauge({
      name: 'autoglm_operator_leader',
      help: '1 while this replica holds the leader lease.',
      registers,
    });
    this.applyTotal = new Counter({
      name: 'autoglm_operator_apply_total',
      help: 'Server-side applies sent, by kind.',
      labelNames: ['kind'],
      registers,
    });
    this.decisions = new Counter({
      name: 'autoglm_operator_tuning_decisions_total',
      help: 'Tuning decisions by knob and node; applied="false" in Recommend mode.',
      labelNames: ['namespace', 'deployment', 'knob', 'node', 'applied'],
      registers,
    });
    this.metricsAvailable = new Gauge({
      name: 'autoglm_operator_tuning_metrics_available',
      help: '1 when the tuning loop could read fresh metrics for the deployment, 0 when it froze.',
      labelNames: ['namespace', 'deployment'],
      registers,
    });
  }
}
