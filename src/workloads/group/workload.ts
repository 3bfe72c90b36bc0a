/**
 * A release group: several workloads of one service moved to a version together — the API with
 * traffic, its event consumers, its worker, its CronJob. To the engine it is one workload with one
 * record: a step is ready when every member is; a promotion goes member by member in the group's
 * order, each finished before the next; a rollback (and the tidying after a promotion) goes in
 * the reverse order. No member is left behind by an error in another: a rollback carries on with
 * the rest and reports every failure at the end.
 */
import { OperationError } from '../../errors.js';
import type { TargetReadiness } from '../../routers/router.js';
import type { MemberStatus, Workload } from '../workload.js';
import type { Member } from './member.js';

/** Members, and the order of promotion (rollback: reversed). */
export interface GroupOptions {
  /** As listed in deploy.yaml. */
  members: Member[];
  /** Member names, first promoted first; default: as listed. */
  order?: string[];
}

/** The group workload. */
export class GroupWorkload implements Workload {
  readonly type = 'group';
  private readonly promotionOrder: Member[];

  constructor(private readonly opts: GroupOptions) {
    const byName = new Map(opts.members.map((m) => [m.name, m]));
    this.promotionOrder = opts.order ? opts.order.map((n) => byName.get(n)!) : [...opts.members];
  }

  /** Members in promotion order. */
  get order(): readonly Member[] {
    return this.promotionOrder;
  }

  async preflight(): Promise<void> {
    await settled(await Promise.allSettled(this.opts.members.map((m) => m.preflight())));
  }

  /** Every member at its share of the step, all at once; ready when all are, stuck when any is. */
  async scaleFor(candidate: string, weight: number): Promise<TargetReadiness> {
    const answers = await settled(await Promise.allSettled(this.opts.members.map((m) => m.scaleFor(candidate, weight))));
    const stuck = answers.find((a) => a.stuck);
    if (stuck) return { ready: false, detail: stuck.detail, stuck: stuck.stuck! };
    const waiting = answers.filter((a) => !a.ready);
    if (waiting.length === 0) return { ready: true, detail: `all ${answers.length} members ready` };
    return { ready: false, detail: `${waiting.length} of ${answers.length} members not ready: ${waiting.map((a) => a.detail).join('; ')}` };
  }

  /** Member by member in order; not ready until the last is done. Promoted members answer at once, so a resumed promotion goes on where it was. */
  async promote(candidate: string): Promise<TargetReadiness> {
    const order = this.promotionOrder;
    for (const [i, member] of order.entries()) {
      const answer = await member.promote(candidate);
      if (!answer.ready) return { ...answer, detail: `promoting member ${i + 1}/${order.length} (${order.map((m) => m.name).join(' → ')}): ${answer.detail}` };
    }
    return { ready: true, detail: `all ${order.length} members promoted: ${order.map((m) => m.name).join(' → ')}` };
  }

  /** Each member back on stable and its candidate side down, one after the other in reverse order. */
  async restoreStable(stable: string): Promise<void> {
    await inReverse(this.promotionOrder, (m) => m.restoreStable(stable));
  }

  async retire(): Promise<void> {
    await inReverse(this.promotionOrder, (m) => m.retire());
  }

  async describe(): Promise<MemberStatus[]> {
    return Promise.all(this.opts.members.map((m) => m.describe().catch((e: unknown) => ({ name: m.name, role: m.role, versions: [], detail: `could not be read: ${(e as Error).message}` }))));
  }

  async failure(candidate: string): Promise<string | undefined> {
    for (const member of this.promotionOrder) {
      const failed = await member.failure?.(candidate);
      if (failed) return failed;
    }
    return undefined;
  }
}

/** The values of settled promises, or the first rejection in the members' order. */
async function settled<T>(results: PromiseSettledResult<T>[]): Promise<T[]> {
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** Run `act` on each member, last promoted first; every member gets its turn, failures are reported together. */
async function inReverse(order: readonly Member[], act: (m: Member) => Promise<void>): Promise<void> {
  const errors: string[] = [];
  for (const member of [...order].reverse()) {
    try {
      await act(member);
    } catch (e) {
      errors.push(`${member.name}: ${(e as Error).message}`);
    }
  }
  const hint = 'fix what it names, then `deploy resume` finishes tidying the group';
  if (errors.length === 1) throw new OperationError(errors[0]!, hint);
  if (errors.length > 1) throw new OperationError(`${errors.length} members failed: ${errors.join('; ')}`, hint);
}
