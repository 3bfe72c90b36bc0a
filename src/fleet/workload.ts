/**
 * The fleet workload: every target's workload (a Deployment pair per cluster, an ECS service per
 * region) driven together. The engine scales the candidate for the largest share any target
 * gets, so in waves a later target's canary is ready before its turn comes — more capacity than
 * it needs for a while, never less.
 */
import { OperationError } from '../errors.js';
import type { TargetReadiness } from '../routers/router.js';
import type { Workload } from '../workloads/workload.js';

/** One target's workload. */
export interface FleetWorkloadTarget {
  name: string;
  workload: Workload;
}

/** Workload over a fleet's targets; targets without a workload are not in the list. */
export class FleetWorkload implements Workload {
  readonly type = 'fleet';

  constructor(readonly targets: FleetWorkloadTarget[]) {}

  /** Every target's preflight; the first failure names its target. */
  async preflight(): Promise<void> {
    await this.all('preflight', (w) => w.preflight());
  }

  /** Ready when every target is; stuck when any is. */
  async scaleFor(candidate: string, weight: number): Promise<TargetReadiness> {
    return combine(await Promise.all(this.targets.map(async (t) => ({ target: t.name, r: await t.workload.scaleFor(candidate, weight) }))));
  }

  /** Rolled out when every target's stable Deployment is. */
  async promote(candidate: string): Promise<TargetReadiness> {
    return combine(await Promise.all(this.targets.map(async (t) => ({ target: t.name, r: await t.workload.promote(candidate) }))));
  }

  /** Every target back on stable; each is tried even when another fails. */
  async restoreStable(stable: string): Promise<void> {
    await this.all('restore stable in', (w) => w.restoreStable(stable));
  }

  /** Every target's canary scaled down; each is tried even when another fails. */
  async retire(): Promise<void> {
    await this.all('retire the canary of', (w) => w.retire());
  }

  private async all(what: string, act: (w: Workload) => Promise<void>): Promise<void> {
    const results = await Promise.allSettled(this.targets.map((t) => act(t.workload)));
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${this.targets[i]!.name}: ${(r.reason as Error).message}`] : []));
    if (failed.length) throw new OperationError(`could not ${what} ${failed.join('; ')}`);
  }
}

function combine(answers: { target: string; r: TargetReadiness }[]): TargetReadiness {
  const stuck = answers.find((a) => a.r.stuck);
  return {
    ready: answers.every((a) => a.r.ready),
    detail: answers.map((a) => `${a.target}: ${a.r.detail}`).join('; '),
    ...(stuck ? { stuck: `${stuck.target}: ${stuck.r.stuck}` } : {}),
  };
}
