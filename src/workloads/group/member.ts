/**
 * One member of a release group: a Deployment (the API with traffic, a consumer, a worker) or a
 * CronJob. The group drives its members through the same motions the engine drives a workload
 * through, and adds what only a member can say (its name, its role, a failed Job).
 */
import type { TargetReadiness } from '../../routers/router.js';
import type { MemberStatus } from '../workload.js';

/** What a member does in the release. */
export type MemberRole = 'traffic' | 'consumer' | 'worker' | 'cron';

/** A member the group drives. */
export interface Member {
  readonly name: string;
  readonly role: MemberRole;
  /** Its objects exist and may be written; throws UsageError naming what is missing. */
  preflight(): Promise<void>;
  /** Run the candidate at this member's share of a step of `weight` percent; ready when all of it is. */
  scaleFor(candidate: string, weight: number): Promise<TargetReadiness>;
  /** Move this member to the candidate for good; ready when it runs there. Idempotent. */
  promote(candidate: string): Promise<TargetReadiness>;
  /** Put this member back on `stable` and its candidate side down (a rollback). Idempotent. */
  restoreStable(stable: string): Promise<void>;
  /** Scale its candidate side down once nothing needs it. Idempotent. */
  retire(): Promise<void>;
  /** What it runs now. */
  describe(): Promise<MemberStatus>;
  /** A run of the candidate that failed (a CronJob's Job), in words. */
  failure?(candidate: string): Promise<string | undefined>;
}

/** A readiness answer of a member, its words prefixed with its name. */
export function named(member: Pick<Member, 'name'>, answer: TargetReadiness): TargetReadiness {
  return { ...answer, detail: `${member.name}: ${answer.detail}`, ...(answer.stuck ? { stuck: `${member.name}: ${answer.stuck}` } : {}) };
}
