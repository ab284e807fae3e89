/** Status conditions as Kubernetes keeps them: a list keyed by type, whose time moves only on a flip. */
import type { Condition } from '../../../crds/deployment.ts';

export type ConditionInput = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

/** The conditions with `next` set; `lastTransitionTime` is kept unless the status flipped. */
export function withCondition(
  current: readonly Condition[],
  next: ConditionInput,
  now: Date,
  generation: number | undefined,
): Condition[] {
  const prev = current.find((c) => c.type === next.type);
  const lastTransitionTime =
    prev !== undefined && prev.status === next.status
      ? prev.lastTransitionTime
      : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const cond: Condition = {
    ...next,
    lastTransitionTime,
    ...(generation === undefined ? {} : { observedGeneration: generation }),
  };
  return [...current.filter((c) => c.type !== next.type), cond].sort((a, b) => a.type.localeCompare(b.type));
}

export function findCondition(conds: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conds?.find((c) => c.type === type);
}
