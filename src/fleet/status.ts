/**
 * What `deploy status` shows of a fleet: every target's live routing and generation, read from
 * the target itself, against what the record says it should carry — so a target that owes a
 * write (unreachable during a rollback, say) is named with the write it owes.
 */
import type { ChalkInstance } from 'chalk';
import type { Project } from '../cli/context.js';
import { stepNumberOf } from '../engine/plan.js';
import type { RolloutState } from '../engine/state.js';
import { createRouter } from '../providers/chosen.js';
import { sameWeights, type Weights } from '../routers/router.js';
import { formatWeights } from '../ui/plain.js';
import { FleetRouter } from './router.js';

/** One target as status shows it. */
export interface TargetRow {
  target: string;
  /** Its live weights, generation and org pins; absent when it did not answer. */
  weights?: Weights;
  generation?: number;
  orgs?: number;
  /** Why it could not be read. */
  error?: string;
  /** The recorded write it does not carry yet (an intent still owed by this target). */
  owes?: string;
  /** Its live weights differ from the record with no write in flight. */
  differs?: boolean;
}

/** Every target's row (those named with --target only); nothing is written, nothing started. */
export async function targetRows(project: Project, state: RolloutState | undefined, clock: () => number): Promise<TargetRow[]> {
  const router = await createRouter(project, undefined, clock);
  if (!(router instanceof FleetRouter)) return [];
  const rows = await router.readTargets();
  return rows
    .filter((r) => !project.only || project.only.includes(r.target))
    .map((r): TargetRow => {
      const intent = state?.intent;
      const intended = intent ? (intent.targets?.[r.target] ?? intent.weights) : undefined;
      const recorded = state ? (state.targets?.[r.target] ?? state.weights) : undefined;
      const owes = intent && (!('live' in r) || !sameWeights(r.live.weights, intended!))
        ? `${intent.to === 'holding' ? `step ${stepNumberOf(intent.step)}` : intent.to.replace('_', ' ')} (${formatWeights(intended!)}) recorded at ${intent.at}`
        : undefined;
      if (!('live' in r)) return { target: r.target, error: r.error.message.split('\n')[0]!, ...(owes ? { owes } : {}) };
      const live = r.live;
      return {
        target: r.target,
        weights: live.weights,
        ...(live.generation !== undefined ? { generation: live.generation } : {}),
        orgs: Object.keys(live.orgs ?? {}).length,
        ...(owes ? { owes } : {}),
        ...(!intent && recorded && !sameWeights(live.weights, recorded) ? { differs: true } : {}),
      };
    });
}

/** The rows as status lines. */
export function renderTargetRows(rows: TargetRow[], c: ChalkInstance): string {
  const width = Math.max(...rows.map((r) => r.target.length));
  return rows
    .map((r) => {
      const head = `target    ${r.target.padEnd(width)}  `;
      const live = r.error !== undefined
        ? c.red(`unreachable: ${r.error}`)
        : `${formatWeights(r.weights ?? {})}${c.dim(` (generation ${r.generation ?? '?'}${r.orgs ? `, ${r.orgs} orgs pinned` : ''})`)}${r.differs ? c.yellow(' — differs from the record') : ''}`;
      const owes = r.owes ? c.yellow(` — owes ${r.owes}; \`deploy resume\` applies it once it answers`) : '';
      return `${head}${live}${owes}`;
    })
    .join('\n');
}
