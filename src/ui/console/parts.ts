/**
 * The parts of a rollout the console shows a row each for: a release group's members (what the
 * workload describes) and a fleet's targets (their live routing, as `deploy status` reads it),
 * each with the verdicts of the gates tied to it. Pure: the runner reads, these fold.
 */
import type { Verdict } from '../../gates/types.js';
import type { MemberStatus } from '../../workloads/workload.js';
import type { ConsoleModel, TargetView } from './types.js';

/** A gate of a row: its name as the row shows it, and its latest verdict (none before its first check). */
export interface PartGate {
  name: string;
  verdict?: Verdict;
}

/**
 * Fold what the workload describes, or why it could not: an error keeps the rows last known and
 * says why beside them. `gatesByMember` names the gates tied to each member by `member:`.
 */
export function foldMembers(model: ConsoleModel, described: MemberStatus[] | Error, gatesByMember: Record<string, string[]>): ConsoleModel {
  if (described instanceof Error) return { ...model, members: { rows: model.members?.rows ?? [], error: described.message.split('\n')[0]! } };
  const rows = described.map((s) => ({ ...s, gates: gatesByMember[s.name] ?? [] }));
  return { ...model, members: { rows } };
}

/** Fold the targets' rows, or why they could not be read (the rows last known are kept). */
export function foldTargets(model: ConsoleModel, rows: TargetView[] | Error): ConsoleModel {
  if (rows instanceof Error) return { ...model, targets: { rows: model.targets?.rows ?? [], error: rows.message.split('\n')[0]! } };
  return { ...model, targets: { rows } };
}

/** The gates of a config tied to a member (`member:` on an errorRate gate), by member. */
export function gatesByMember(gates: readonly { name: string; member?: string | undefined }[] | undefined): Record<string, string[]> {
  const by: Record<string, string[]> = {};
  for (const g of gates ?? []) if (g.member !== undefined) (by[g.member] ??= []).push(g.name);
  return by;
}

/** A member's gates with their latest verdicts, in the order the config lists them. */
export function memberGates(model: ConsoleModel, member: { gates: string[] }): PartGate[] {
  return member.gates.map((name) => {
    const line = model.gates.find((g) => g.gate === name);
    return line ? { name, verdict: line.verdict } : { name };
  });
}

/** A target's gates (`errors@eu` for target eu), named without the target, with their latest verdicts. */
export function targetGates(model: ConsoleModel, target: string): PartGate[] {
  const suffix = `@${target}`;
  return model.gates.filter((g) => g.gate.endsWith(suffix)).map((g) => ({ name: g.gate.slice(0, -suffix.length), verdict: g.verdict }));
}
