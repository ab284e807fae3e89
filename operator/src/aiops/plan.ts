/**
 * One round of the loop for one AutoGLMDeployment, as a pure function: current settings,
 * signals and past decisions in, proposed changes out. Bounds come from the spec (a knob
 * without bounds is never moved); cooldowns and rollbacks are judged from the decisions kept
 * in status, so they survive an operator restart.
 */
import type { AutoGLMDeployment, Decision } from '../../../crds/deployment.ts';
import {
  SERVING_PARAMS_DEFAULTS,
  type Compression,
  type ServingParams,
  type ServingParamsPatch,
} from '../../../crds/tuning.ts';
import { specDefaults } from '../controller/desired.ts';
import { desiredReplicas } from '../controller/reconciler.ts';
import { nextBatchSize, aimd, breached, type LatencySignals } from './policies/batching.ts';
import { armKey, armsWithin, chooseArm, type Arm } from './policies/compression.ts';
import { decideReplicas } from './policies/replicas.ts';
import {
  admitted,
  admittedPrecisions,
  nextPrecision,
  nextSparsity,
  PRECISION_LADDER,
  type Precision,
  type SparsityKnob,
  type SparsitySignals,
} from './policies/sparsity.ts';
import { nextChunkTokens } from './policies/transport.ts';
import type { DeploymentSignals } from './signals.ts';

export type Knob =
  | 'replicas'
  | 'maxBatchSize'
  | 'maxBatchedTokens'
  | 'maxQueueDelayMs'
  | 'compression'
  | 'streamChunkTokens'
  | 'precision'
  | SparsityKnob;

export interface Change {
  readonly knob: Knob;
  readonly node?: string;
  readonly from: string;
  readonly to: string;
  readonly reason: string;
  readonly evidence: string;
}

/** Knobs that need a rollout (new pods); at most one of them changes per deployment per cooldown. */
export const SLOW_KNOBS: ReadonlySet<Knob> = new Set(['replicas', 'precision']);

export function effectiveParams(agd: AutoGLMDeployment, node?: string): ServingParams {
  const t = agd.status?.tuning;
  const patch = (p: unknown) => p as ServingParamsPatch | undefined;
  return {
    ...SERVING_PARAMS_DEFAULTS,
    ...specDefaults(agd.spec),
    ...patch(t?.defaults),
    ...(node === undefined ? {} : patch(t?.nodes?.[node])),
  };
}

const compressionText = (c: Compression) =>
  c.algorithm === 'none' ? 'none' : `${c.algorithm}:${String(c.level)}`;
export function parseCompression(text: string): Compression {
  const [algorithm = 'none', level = '0'] = text.split(':');
  if (algorithm === 'gzip' || algorithm === 'br') return { algorithm, level: Number(level) };
  return { algorithm: 'none' };
}

function parsePrecision(text: string): Precision {
  const p = PRECISION_LADDER.find((x) => x === text);
  if (p === undefined) throw new Error(`not a precision: ${text}`);
  return p;
}

function lastDecision(decisions: readonly Decision[], knob: Knob, node?: string): Decision | undefined {
  return decisions.findLast((d) => d.knob === knob && d.node === node);
}

function secondsSince(d: Decision | undefined, now: Date): number {
  return d === undefined ? Infinity : (now.getTime() - Date.parse(d.time)) / 1000;
}

interface Evidence {
  ttftP99Ms: number;
  itlP99Ms: number;
}

function evidenceOf(s: DeploymentSignals): string {
  const e: Evidence = { ttftP99Ms: Math.round(s.ttftP99Ms), itlP99Ms: Math.round(s.itlP99Ms) };
  return JSON.stringify({ ...e, peakQueue: s.peakQueue, peakKvUsage: Number(s.peakKvUsage.toFixed(3)) });
}

/**
 * A change made since the last cooldown that was followed by an SLO breach it did not find is
 * undone. Returns the rollback, or undefined.
 */
function rollback(
  prev: Decision | undefined,
  s: LatencySignals,
  slo: Evidence,
  now: Date,
  cooldownS: number,
) {
  if (prev === undefined || prev.reason.startsWith('rollback') || prev.from === prev.to) return undefined;
  const age = secondsSince(prev, now);
  if (age < cooldownS || age > 3 * cooldownS || !breached(s, slo)) return undefined;
  const before = JSON.parse(prev.evidence ?? '{}') as Partial<Evidence>;
  if (breached({ ...s, ttftP99Ms: before.ttftP99Ms ?? 0, itlP99Ms: before.itlP99Ms ?? 0 }, slo))
    return undefined;
  return {
    to: prev.from,
    reason: `rollback: the SLO was met before ${prev.from} → ${prev.to} and is breached since`,
  };
}

interface Ctx {
  readonly agd: AutoGLMDeployment;
  readonly s: DeploymentSignals;
  readonly now: Date;
  readonly decisions: readonly Decision[];
  readonly out: Change[];
}

function propose(ctx: Ctx, c: Omit<Change, 'evidence'>): void {
  if (c.from !== c.to) ctx.out.push({ ...c, evidence: evidenceOf(ctx.s) });
}

function planReplicas(ctx: Ctx): void {
  const a = ctx.agd.spec.autoscaling;
  if (!a.enabled) return;
  const current = desiredReplicas(ctx.agd);
  const d = decideReplicas(
    { current, ready: ctx.agd.status?.readyReplicas ?? 0, ...ctx.s },
    {
      min: a.minReplicas,
      max: a.maxReplicas,
      queueThreshold: a.targets.queueDepth,
      kvThreshold: a.targets.kvCacheUsage,
    },
  );
  // Up at once; down only after the cooldown (the window already spans the stabilization time).
  const sinceLast = secondsSince(lastDecision(ctx.decisions, 'replicas'), ctx.now);
  if (d.replicas < current && sinceLast < ctx.agd.spec.tuning.cooldownSeconds.replicas) return;
  propose(ctx, { knob: 'replicas', from: String(current), to: String(d.replicas), reason: d.reason });
}

function planBatching(ctx: Ctx): void {
  const { bounds, slo, cooldownSeconds } = ctx.agd.spec.tuning;
  const cur = effectiveParams(ctx.agd);
  const lat: LatencySignals = {
    ttftP99Ms: ctx.s.ttftP99Ms,
    itlP99Ms: ctx.s.itlP99Ms,
    peakQueue: ctx.s.peakQueue,
    batchP90: ctx.s.batchP90,
  };
  const knobs = [
    [
      'maxBatchSize',
      bounds.maxBatchSize,
      (v: number) => nextBatchSize(v, lat, slo, bounds.maxBatchSize ?? { min: v, max: v }),
    ],
    [
      'maxBatchedTokens',
      bounds.maxBatchedTokens,
      (v: number) => aimd(v, lat, slo, bounds.maxBatchedTokens ?? { min: v, max: v }, 256),
    ],
    [
      'maxQueueDelayMs',
      bounds.maxQueueDelayMs,
      (v: number) => aimd(v, lat, slo, bounds.maxQueueDelayMs ?? { min: v, max: v }, 1, false),
    ],
  ] as const;
  for (const [knob, range, next] of knobs) {
    if (range === undefined) continue;
    const prev = lastDecision(ctx.decisions, knob);
    const undo = rollback(prev, lat, slo, ctx.now, cooldownSeconds.batching);
    if (undo !== undefined) {
      propose(ctx, { knob, from: String(cur[knob]), to: undo.to, reason: undo.reason });
      continue;
    }
    if (secondsSince(prev, ctx.now) < cooldownSeconds.batching) continue;
    const step = next(cur[knob]);
    propose(ctx, { knob, from: String(cur[knob]), to: String(step.value), reason: step.reason });
  }
}

/** The pressures the sparsity and precision knobs answer. */
function sparsitySignals(ctx: Ctx): SparsitySignals {
  return {
    peakKvUsage: ctx.s.peakKvUsage,
    kvThreshold: ctx.agd.spec.autoscaling.targets.kvCacheUsage,
    itlP99Ms: ctx.s.itlP99Ms,
    itlSloMs: ctx.agd.spec.tuning.slo.itlP99Ms,
  };
}

/** Deployment-wide, like batching: a sparsity setting changes quality for every request alike. */
function planSparsity(ctx: Ctx): void {
  const { bounds, slo, cooldownSeconds, qualityPrices } = ctx.agd.spec.tuning;
  const cur = effectiveParams(ctx.agd);
  const signals = sparsitySignals(ctx);
  for (const knob of ['kvWindowTokens', 'headEntropyThreshold'] as const) {
    const range = bounds[knob];
    if (range === undefined) continue;
    const ladder = admitted(knob, range, qualityPrices ?? [], slo.maxPerplexityIncrease);
    const gated = !ladder.includes(cur[knob]);
    // Stepping back inside the gate waits for no cooldown.
    if (!gated && secondsSince(lastDecision(ctx.decisions, knob), ctx.now) < cooldownSeconds.sparsity)
      continue;
    const step = nextSparsity(knob, cur[knob], ladder, signals);
    propose(ctx, { knob, from: String(cur[knob]), to: String(step.value), reason: step.reason });
  }
}

/**
 * A precision change rolls the pods out, so it waits its cooldown after any slow-knob decision:
 * at most one rollout-class change per deployment per cooldown.
 */
function planPrecision(ctx: Ctx): void {
  const { bounds, slo, cooldownSeconds, qualityPrices } = ctx.agd.spec.tuning;
  const allowed = bounds.precision;
  const model = ctx.agd.spec.model;
  if (allowed === undefined || model.format === 'onnx') return;
  const current = ctx.agd.status?.tuning?.precision ?? model.precision;
  const ladder = admittedPrecisions(model.precision, allowed, qualityPrices ?? [], slo.maxPerplexityIncrease);
  const lastSlow = ctx.decisions.findLast((d) => SLOW_KNOBS.has(d.knob as Knob));
  const gated = !ladder.includes(current);
  if (!gated && secondsSince(lastSlow, ctx.now) < cooldownSeconds.precision) return;
  const step = nextPrecision(current, model.precision, ladder, sparsitySignals(ctx));
  propose(ctx, { knob: 'precision', from: current, to: step.value, reason: step.reason });
}

function planNode(ctx: Ctx, node: string): void {
  const { bounds, cooldownSeconds } = ctx.agd.spec.tuning;
  const ns = ctx.s.nodes.get(node);
  if (ns === undefined) return;
  const cur = effectiveParams(ctx.agd, node);
  const c = bounds.compression;
  if (
    c !== undefined &&
    secondsSince(lastDecision(ctx.decisions, 'compression', node), ctx.now) >= cooldownSeconds.transport
  ) {
    const arms = armsWithin(c.algorithms, c.minLevel, c.maxLevel);
    const current: Arm =
      cur.compression.algorithm === 'none' ? { algorithm: 'none', level: 0 } : cur.compression;
    const pick = chooseArm(arms, ns.arms, current, {
      probes: ns.probes,
      ...(ns.pathBytesPerS === undefined ? {} : { pathBytesPerS: ns.pathBytesPerS }),
    });
    propose(ctx, {
      knob: 'compression',
      node,
      from: compressionText(cur.compression),
      to: armKey(pick.arm),
      reason: pick.reason,
    });
  }
  const r = bounds.streamChunkTokens;
  if (
    r !== undefined &&
    secondsSince(lastDecision(ctx.decisions, 'streamChunkTokens', node), ctx.now) >= cooldownSeconds.transport
  ) {
    const step = nextChunkTokens(
      cur.streamChunkTokens,
      { drainSecondsMean: ns.drainSecondsMean, itlP50Seconds: ctx.s.itlP50Ms / 1000 },
      r,
    );
    propose(ctx, {
      knob: 'streamChunkTokens',
      node,
      from: String(cur.streamChunkTokens),
      to: String(step.value),
      reason: step.reason,
    });
  }
}

export function plan(agd: AutoGLMDeployment, s: DeploymentSignals, now: Date): Change[] {
  const ctx: Ctx = { agd, s, now, decisions: agd.status?.decisions ?? [], out: [] };
  planReplicas(ctx);
  planBatching(ctx);
  planSparsity(ctx);
  // Never two rollouts at once: a replica change this round holds the precision back.
  if (!ctx.out.some((c) => c.knob === 'replicas')) planPrecision(ctx);
  for (const node of [...s.nodes.keys()].sort()) if (node !== '') planNode(ctx, node);
  return ctx.out;
}

/** The tuning status after applying changes: deployment-wide knobs in defaults, the rest per node. */
export function applyChanges(
  tuning: NonNullable<AutoGLMDeployment['status']>['tuning'],
  changes: readonly Change[],
): NonNullable<AutoGLMDeployment['status']>['tuning'] {
  const next = structuredClone(tuning ?? { generation: 0, defaults: {} });
  for (const c of changes) {
    if (c.knob === 'replicas') {
      next.replicas = Number(c.to);
      continue;
    }
    if (c.knob === 'precision') {
      next.precision = parsePrecision(c.to);
      continue;
    }
    const target = c.node === undefined ? next.defaults : ((next.nodes ??= {})[c.node] ??= {});
    if (c.knob === 'compression') target.compression = parseCompression(c.to);
    else target[c.knob] = Number(c.to);
  }
  if (changes.length > 0) next.generation += 1;
  return next;
}
