/**
 * A fleet's gates: every configured gate judged in each target on that target's own metrics
 * (its Prometheus, or the shared one with its label matchers), plus `reachable`, a look at each
 * target's router. Results are named `GATE@TARGET` and carry the target, so a failure anywhere
 * rolls back the whole fleet and the rollback names where it failed; a step passes only when
 * every target's gates passed.
 *
 * In waves a target is judged on its own ladder: the plan it sees has its own share at each step
 * (margins and looks follow its steps, not the fleet's), from its first step through its bake. A
 * target not started yet serves no candidate and is not judged; one that finished its bake is
 * still watched — a failure there rolls back — but its silence (stable serves none of its
 * traffic any more) does not hold the others.
 */
import type { GateRunner } from '../engine/machine.js';
import type { Plan } from '../engine/plan.js';
import type { RolloutState } from '../engine/state.js';
import type { GateResult } from '../gates/types.js';
import { REACHABLE_GATE } from '../../strategies/fleet.js';
import type { FleetRouter } from './router.js';

/** One target's runner over its own metrics (undefined when the config has no gates). */
export interface FleetGateTarget {
  name: string;
  runner: GateRunner | undefined;
}

/** A gate result of one target. */
export type TargetGateResult = GateResult & { target: string };

/** How a target takes part in a step's gates. */
type Role = 'judged' | 'watched' | 'idle';

/** What `reachable@TARGET` remembers: since when the target has not answered. */
interface ReachableMemory {
  since?: number;
}

/** Gate runner over a fleet (see the file comment). */
export class FleetGates implements GateRunner {
  constructor(
    private readonly targets: FleetGateTarget[],
    private readonly router: Pick<FleetRouter, 'readTargets'>,
    private readonly unreachableAfterMs: number,
  ) {}

  /** The named gates in every target taking part in the step, and `reachable` when named. */
  async evaluate(state: RolloutState, names: string[], atMs: number): Promise<GateResult[]> {
    const configured = names.filter((n) => n !== REACHABLE_GATE);
    const [reachable, ...perTarget] = await Promise.all([
      names.includes(REACHABLE_GATE) ? this.reachability(state, atMs) : Promise.resolve([]),
      ...this.targets.map(async (t): Promise<TargetGateResult[]> => {
        const role = roleAt(state.plan, state.step, t.name);
        if (role === 'idle' || !t.runner || configured.length === 0) return [];
        const results = await t.runner.evaluate(projected(state, t.name), configured, atMs);
        return results.filter((r) => role === 'judged' || r.verdict === 'failed').map((r) => ({ ...r, gate: `${r.gate}@${t.name}`, target: t.name }));
      }),
    ]);
    return [...perTarget.flat(), ...reachable!];
  }

  /** `reachable@TARGET`: passed while its router answers; inconclusive (the step holds) while it does not; failed past the timeout. */
  private async reachability(state: RolloutState, atMs: number): Promise<TargetGateResult[]> {
    const at = new Date(atMs).toISOString();
    return (await this.router.readTargets()).map((r) => {
      const gate = `${REACHABLE_GATE}@${r.target}`;
      const base = { gate, type: 'query' as const, target: r.target, at, queries: [] };
      if ('live' in r) return { ...base, verdict: 'passed', reason: `${r.target}'s router answers (generation ${r.live.generation ?? '?'})`, memory: {} satisfies ReachableMemory };
      const since = (state.gateMemory?.[gate] as ReachableMemory | undefined)?.since ?? atMs;
      const s = Math.round((atMs - since) / 1000);
      const why = r.error.message.split('\n')[0];
      return atMs - since >= this.unreachableAfterMs
        ? { ...base, verdict: 'failed', reason: `${r.target}'s router has not answered for ${s}s: ${why}`, memory: { since } satisfies ReachableMemory }
        : { ...base, verdict: 'inconclusive', reason: `${r.target}'s router does not answer (${s}s of ${Math.round(this.unreachableAfterMs / 1000)}s): ${why}`, memory: { since } satisfies ReachableMemory };
    });
  }
}

/**
 * How `target` takes part in step `index`: in lockstep always judged; in waves judged from its
 * first share through the step it reaches 100% (its bake), watched after, idle before.
 */
export function roleAt(plan: Plan, index: number, target: string): Role {
  const step = plan.steps[index];
  if (!step?.targets) return 'judged';
  const share = step.targets[target] ?? 0;
  if (share <= 0) return 'idle';
  const before = index > 0 ? (plan.steps[index - 1]?.targets?.[target] ?? 0) : 0;
  return share < 100 || before < 100 ? 'judged' : 'watched';
}

/**
 * The rollout as one target's gates see it: its own share at each step (its ladder's margins and
 * looks), gates only on steps where it serves the candidate, and its own memory of each gate.
 */
export function projected(state: RolloutState, target: string): RolloutState {
  const suffix = `@${target}`;
  const plan: Plan = {
    ...state.plan,
    steps: state.plan.steps.map((s) => {
      if (!s.targets) return s;
      const weight = s.targets[target] ?? 0;
      return { ...s, weight, gates: weight > 0 ? s.gates : [] };
    }),
  };
  const memory = Object.fromEntries(Object.entries(state.gateMemory ?? {}).flatMap(([k, v]) => (k.endsWith(suffix) ? [[k.slice(0, -suffix.length), v]] : [])));
  const { gateMemory: _all, ...rest } = state;
  return { ...rest, plan, ...(Object.keys(memory).length ? { gateMemory: memory } : {}) };
}
