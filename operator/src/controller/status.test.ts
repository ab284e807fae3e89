import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  computeStatus,
  ownedPart,
  podProblems,
  transitions,
  type DeploymentView,
  type StatusInput,
} from './status.ts';
import { sampleAgd } from './sample.test-support.ts';

const T0 = new Date('2026-01-01T00:00:00Z');
const T1 = new Date('2026-01-01T00:05:00Z');

function dep(status: NonNullable<DeploymentView['status']>, generation = 1): DeploymentView {
  return { metadata: { generation }, status: { observedGeneration: generation, ...status } };
}

function input(over: Partial<StatusInput> = {}): StatusInput {
  return {
    agd: sampleAgd(),
    deployment: dep({ replicas: 2, readyReplicas: 2, updatedReplicas: 2 }),
    pods: [],
    problems: [],
    desiredReplicas: 2,
    endpoint: 'http://chat.team-a.svc/v1',
    now: T0,
    ...over,
  };
}
const cond = (s: ReturnType<typeof computeStatus>, type: string) =>
  s.conditions?.find((c) => c.type === type);

describe('status', () => {
  it('is Available, not Progressing, not Degraded once every replica is updated and ready', () => {
    const s = computeStatus(input());
    assert.equal(cond(s, 'Available')?.status, 'True');
    assert.equal(cond(s, 'Progressing')?.status, 'False');
    assert.equal(cond(s, 'Degraded')?.status, 'False');
    assert.equal(cond(s, 'ModelReady')?.status, 'True');
    assert.equal(s.ready, '2/2');
    assert.equal(s.selector, 'serving.autoglm.io/deployment=chat');
    assert.equal(s.observedGeneration, 3);
    assert.ok(s.conditions?.every((c) => c.observedGeneration === 3));
  });

  it('is Progressing while a rollout runs and while the Deployment has not seen its generation', () => {
    assert.equal(
      cond(
        computeStatus(input({ deployment: dep({ replicas: 3, readyReplicas: 2, updatedReplicas: 1 }) })),
        'Progressing',
      )?.status,
      'True',
    );
    const unseen: DeploymentView = {
      metadata: { generation: 2 },
      status: { observedGeneration: 1, replicas: 2, readyReplicas: 2, updatedReplicas: 2 },
    };
    assert.equal(cond(computeStatus(input({ deployment: unseen })), 'Progressing')?.status, 'True');
    const s = computeStatus(input({ deployment: undefined }));
    assert.equal(cond(s, 'Available')?.status, 'False');
    assert.equal(cond(s, 'ModelReady')?.reason, 'Loading');
  });

  it('reports a missing Secret as Degraded and ModelReady=False with the reason', () => {
    const s = computeStatus(
      input({
        deployment: dep({}),
        problems: [{ reason: 'SecretNotFound', message: 'Secret team-a/hf does not exist' }],
      }),
    );
    assert.deepEqual([cond(s, 'Degraded')?.status, cond(s, 'Degraded')?.reason], ['True', 'SecretNotFound']);
    assert.deepEqual(
      [cond(s, 'ModelReady')?.status, cond(s, 'ModelReady')?.reason],
      ['False', 'SecretNotFound'],
    );
  });

  it('reports crash-looping servers and stuck rollouts as Degraded', () => {
    const pods = [
      {
        metadata: { name: 'chat-1' },
        status: {
          containerStatuses: [
            {
              name: 'server',
              restartCount: 4,
              state: { waiting: { reason: 'CrashLoopBackOff' } },
              lastState: { terminated: { exitCode: 1, message: 'error: model not found' } },
            },
          ],
        },
      },
    ];
    assert.deepEqual(podProblems(pods), [
      {
        reason: 'ServerCrashLoop',
        message: 'pod chat-1 container server: CrashLoopBackOff: error: model not found',
      },
    ]);
    assert.equal(cond(computeStatus(input({ pods })), 'Degraded')?.reason, 'ServerCrashLoop');
    const stuck = dep({
      replicas: 1,
      conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }],
    });
    const s = computeStatus(input({ deployment: stuck }));
    assert.equal(cond(s, 'Degraded')?.reason, 'ProgressDeadlineExceeded');
    assert.equal(cond(s, 'Progressing')?.status, 'False');
  });

  it('moves lastTransitionTime only when a condition flips, so an unchanged world writes nothing', () => {
    const first = computeStatus(input());
    const agd = sampleAgd();
    agd.status = { ...first, tuning: { generation: 2, defaults: {} } };
    const again = computeStatus(input({ agd, now: T1 }));
    assert.deepEqual(again, ownedPart(agd.status), 'same inputs, later: identical owned status');
    assert.deepEqual(transitions(agd.status.conditions, again.conditions ?? []), []);
    const flipped = computeStatus(input({ agd, now: T1, deployment: dep({ replicas: 2 }) }));
    assert.equal(cond(flipped, 'Available')?.lastTransitionTime, '2026-01-01T00:05:00Z');
    assert.equal(cond(flipped, 'Degraded')?.lastTransitionTime, '2026-01-01T00:00:00Z');
    assert.deepEqual(
      transitions(agd.status.conditions, flipped.conditions ?? [])
        .map((c) => c.type)
        .sort(),
      ['Available', 'ModelReady', 'Progressing'],
    );
  });

  it('keeps the tuning loop’s conditions and fields out of what it owns', () => {
    const agd = sampleAgd();
    agd.status = {
      conditions: [
        {
          type: 'Tuned',
          status: 'True',
          reason: 'x',
          message: '',
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
      decisions: [],
    };
    const s = computeStatus(input({ agd }));
    assert.equal(cond(s, 'Tuned'), undefined);
    assert.deepEqual(ownedPart(agd.status), { conditions: [] });
  });

  it('is Available when scaled to zero', () => {
    const s = computeStatus(input({ desiredReplicas: 0, deployment: dep({}) }));
    assert.equal(cond(s, 'Available')?.reason, 'ScaledToZero');
    assert.equal(cond(s, 'Progressing')?.status, 'False');
  });
});
