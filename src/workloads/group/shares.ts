/**
 * How the members of a release group share a step. Pure.
 *
 * A traffic member follows the weight (the kubernetes workload's own arithmetic). A consumer or a
 * worker has no weight to follow: competing consumers take messages in proportion to their
 * replicas, so the candidate's share of the messages is its share of the member's replicas. The
 * candidate gets round(weight × replicas), at least one from the member's first candidate step on
 * and none before it — never "0 replicas and a gate that passes on silence". The stable Deployment
 * gives up as many as the candidate takes, so the member keeps its size, but it keeps one until the
 * last step: a one-replica consumer then shares its queue half and half from its first candidate
 * step instead of handing all of it to the candidate at 25%.
 */

/** A consumer's or worker's first candidate replica comes at the first step of at least this weight. */
export const DEFAULT_FIRST_CANDIDATE_WEIGHT = 25;

/** Replicas of each side of a member at one step. */
export interface MemberShare {
  candidate: number;
  stable: number;
}

/**
 * The replicas of a consumer or worker of `replicas` at a step of `weight` percent, its candidate
 * starting at the first step of at least `firstCandidateWeight` percent.
 */
export function queueShare(replicas: number, weight: number, firstCandidateWeight = DEFAULT_FIRST_CANDIDATE_WEIGHT): MemberShare {
  if (weight <= 0 || weight < firstCandidateWeight) return { candidate: 0, stable: replicas };
  const candidate = Math.min(replicas, Math.max(1, Math.round((replicas * weight) / 100)));
  const stable = weight >= 100 ? replicas - candidate : Math.max(1, replicas - candidate);
  return { candidate, stable };
}

/** The candidate's share of a member's messages at a step: its replicas over all of them. */
export function messageShare(share: MemberShare): number {
  const total = share.candidate + share.stable;
  return total === 0 ? 0 : share.candidate / total;
}

/** Whether a CronJob switching at `switchWeight` (undefined: at promotion) runs the candidate at a step of `weight`. */
export function cronSwitched(weight: number, switchWeight: number | undefined): boolean {
  return switchWeight !== undefined && weight >= switchWeight;
}
