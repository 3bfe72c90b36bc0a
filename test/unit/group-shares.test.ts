/**
 * The arithmetic of a release group's step: each consumer's and worker's replicas per version,
 * when a CronJob switches, and which member gates a step checks — and the config rules around it.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/parse.js';
import { UsageError } from '../../src/errors.js';
import { cronSwitched, messageShare, queueShare } from '../../src/workloads/group/shares.js';
import { planFor } from '../../strategies/index.js';

const LADDER = [1, 5, 25, 50, 100];
const perStep = (replicas: number, first?: number) => LADDER.map((w) => queueShare(replicas, w, first));

describe('a consumer’s share of a step', () => {
  it('gives the seed’s consumers their first candidate replica at 25%, the stable side giving one up', () => {
    // consumer-lis-testresult (2 replicas)
    expect(perStep(2)).toEqual([
      { candidate: 0, stable: 2 },
      { candidate: 0, stable: 2 },
      { candidate: 1, stable: 1 },
      { candidate: 1, stable: 1 },
      { candidate: 2, stable: 0 },
    ]);
    // consumer-customer, consumer-homekit-register, wrk--default (1 replica): half and half until the last step
    expect(perStep(1)).toEqual([
      { candidate: 0, stable: 1 },
      { candidate: 0, stable: 1 },
      { candidate: 1, stable: 1 },
      { candidate: 1, stable: 1 },
      { candidate: 1, stable: 0 },
    ]);
  });

  it('follows the weight for larger members: round(weight × replicas), at least one from the first candidate step', () => {
    expect(perStep(4).map((s) => s.candidate)).toEqual([0, 0, 1, 2, 4]);
    expect(perStep(10).map((s) => [s.candidate, s.stable])).toEqual([[0, 10], [0, 10], [3, 7], [5, 5], [10, 0]]);
    expect(queueShare(3, 50)).toEqual({ candidate: 2, stable: 1 });
  });

  it('moves the first candidate replica to the step firstCandidateStep names, none before it', () => {
    expect(perStep(1, 50).map((s) => s.candidate)).toEqual([0, 0, 0, 1, 1]);
    expect(perStep(20, 5).map((s) => s.candidate)).toEqual([0, 1, 5, 10, 20]);
    expect(perStep(100, 1).map((s) => s.candidate)).toEqual([1, 5, 25, 50, 100]);
    expect(queueShare(2, 0, 0)).toEqual({ candidate: 0, stable: 2 });
  });

  it('never runs fewer replicas than the member has, nor more than twice its candidate share', () => {
    for (const replicas of [1, 2, 3, 4, 7, 50]) {
      for (const w of [1, 2.5, 5, 10, 25, 33, 50, 75, 99, 100]) {
        const s = queueShare(replicas, w);
        expect(s.candidate + s.stable).toBeGreaterThanOrEqual(replicas);
        expect(s.candidate + s.stable).toBeLessThanOrEqual(replicas + 1);
        expect(s.candidate).toBeLessThanOrEqual(replicas);
        if (w === 100) expect(s).toEqual({ candidate: replicas, stable: 0 });
      }
    }
  });

  it('says what share of the messages the candidate takes', () => {
    expect(LADDER.map((w) => messageShare(queueShare(1, w)))).toEqual([0, 0, 0.5, 0.5, 1]);
    expect(messageShare(queueShare(4, 25))).toBe(0.25);
  });

  it('switches a CronJob at its step, or only at promotion', () => {
    expect(LADDER.map((w) => cronSwitched(w, 50))).toEqual([false, false, false, true, true]);
    expect(LADDER.map((w) => cronSwitched(w, undefined))).toEqual([false, false, false, false, false]);
  });
});

const seed = (members: string, extra = '') => `service: pat-dtc-be
stable: v1
versions:
  v1: { image: "registry.example/pat-dtc-be:1.0" }
  v2: { image: "registry.example/pat-dtc-be:2.0" }
kubernetes: { namespace: pat--dtc--be }
router: { type: gateway-api, httpRoute: pat--dtc--be--app--prod, service: pat--dtc--be--app--prod }
${extra}workload:
  type: group
  members:
${members}`;

const SEED_MEMBERS = `    - { name: api, role: traffic, deployment: pat--dtc--be--app--prod }
    - { name: lis, role: consumer, deployment: pat--dtc--be--consumer-lis-testresult--prod }
    - { name: customer, role: consumer, deployment: pat--dtc--be--consumer-customer--prod, firstCandidateStep: 50% }
    - { name: worker, role: worker, deployment: pat--dtc--be--wrk--default--prod }
    - { name: cron, role: cron, cronJob: pat--dtc--be--cron--prod, switchAt: 50% }
`;

function problem(text: string): string {
  try {
    parseConfig(text, 'deploy.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('expected a config error');
}

describe('the group section', () => {
  it('ties a member’s gate to the steps its candidate runs on', () => {
    const gates = `prometheus: { url: "http://127.0.0.1:9090" }
gates:
  - { name: api-errors, type: errorRate }
  - { name: lis-failures, type: errorRate, member: lis, requests: 'sum(increase(messages_processed_total{version="{{version}}"}[{{window}}]))', errors: 'sum(increase(messages_failed_total{version="{{version}}"}[{{window}}]))' }
  - { name: customer-failures, type: errorRate, member: customer }
  - { name: cron-failures, type: errorRate, member: cron }
`;
    const config = parseConfig(seed(SEED_MEMBERS, gates), 'deploy.yaml');
    const plan = planFor(config, '.');
    expect(plan.steps.map((s) => [s.weight, s.gates])).toEqual([
      [1, ['api-errors']],
      [5, ['api-errors']],
      [25, ['api-errors', 'lis-failures']],
      [50, ['api-errors', 'lis-failures', 'customer-failures', 'cron-failures']],
      [100, []],
    ]);
  });

  it('refuses a gate naming no member, two traffic members, a member without the candidate’s image, and a bad order', () => {
    const gate = `prometheus: { url: "http://127.0.0.1:9090" }\ngates:\n  - { name: e, type: errorRate, member: billing }\n`;
    expect(problem(seed(SEED_MEMBERS, gate))).toMatch(/gates\[0\]\.member: no member "billing" in workload\.members \(members: api, lis, customer, worker, cron\)/);
    expect(problem(seed(`    - { name: api, role: traffic, deployment: api }\n    - { name: admin, role: traffic, deployment: admin }\n`))).toMatch(
      /workload\.members\[1\]\.role: members api and admin both have role traffic, and router gateway-api routes one service/,
    );
    expect(problem(seed(`    - { name: lis, role: consumer, deployment: lis }\n`))).toMatch(/workload\.members: router gateway-api routes traffic to one member/);
    const noImage = seed(SEED_MEMBERS).replace('v2: { image: "registry.example/pat-dtc-be:2.0" }', 'v2: {}');
    expect(problem(noImage)).toMatch(/workload\.members\[4\]: member cron has no image of v2: set versions\.v2\.image, or the member's image: with \{\{version\}\}/);
    expect(problem(`${seed(SEED_MEMBERS)}  order: [api, lis, lis, nobody]\n`)).toMatch(/workload\.order\[2\]: member "lis" is listed twice/);
    expect(problem(`${seed(SEED_MEMBERS)}  order: [api, lis, nobody]\n`)).toMatch(/workload\.order: must list every member once; missing: customer, worker, cron/);
    expect(problem(seed(`    - { name: api, role: traffic, deployment: api, cronJob: api }\n`))).toMatch(/workload\.members\[0\]\.cronJob: unknown field/);
    expect(problem(seed(`    - { name: api, role: traffic, deployment: api }\n    - { name: c, role: cron, cronJob: c, switchAt: soon }\n`))).toMatch(/switchAt: must be promotion or a step's weight/);
    const notGroup = `${seed(SEED_MEMBERS)}`.replace(/workload:[\s\S]*$/, 'workload: { type: kubernetes, deployment: api }\n');
    expect(problem(`${notGroup}${gate}`)).toMatch(/gates\[0\]\.member: only a workload with members \(type group\)/);
  });

  it('takes the seed’s namespace with a member’s own image and a consumer without a router', () => {
    const own = seed(`    - { name: lis, role: consumer, deployment: lis, image: "registry.example/lis:{{version}}" }\n`).replace(/router:.*\n/, 'router: { type: none }\n').replace('v2: { image: "registry.example/pat-dtc-be:2.0" }', 'v2: {}');
    const config = parseConfig(own, 'deploy.yaml');
    expect(config.workload).toMatchObject({ type: 'group', members: [{ name: 'lis', role: 'consumer' }] });
  });
});
