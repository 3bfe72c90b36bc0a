/** What a release group's members are at run time: their images, when they run the candidate, the rules across sections. */
import type { ProviderConfig } from '../../config/schema.js';
import type { Chosen, Issue } from '../../providers/provider.js';
import type { GroupConfig, MemberConfig } from './section.js';
import { cronSwitched, DEFAULT_FIRST_CANDIDATE_WEIGHT } from './shares.js';

/** `member`'s image of `version`: its own template filled in, else the version's image. */
export function imageOf(member: MemberConfig, config: Pick<ProviderConfig, 'versions'>, version: string): string | undefined {
  return member.image ? member.image.replaceAll('{{version}}', version) : config.versions[version]?.image;
}

/** Whether `member` runs the candidate at a step of `weight` percent (its gates are checked from then on). */
export function runsCandidateAt(member: MemberConfig, weight: number): boolean {
  if (member.role === 'traffic') return weight > 0;
  if (member.role === 'cron') return cronSwitched(weight, member.switchAt === 'promotion' ? undefined : member.switchAt);
  return weight > 0 && weight >= (member.firstCandidateStep ?? DEFAULT_FIRST_CANDIDATE_WEIGHT);
}

/** The rules across sections (see the file's comment). */
export function validateGroup(w: GroupConfig, config: ProviderConfig, issue: Issue, chosen: Chosen): void {
  const at = (i: number, field?: string) => ['workload', 'members', i, ...(field ? [field] : [])];
  const seen = new Map<string, number>();
  w.members.forEach((m, i) => {
    if (seen.has(m.name)) issue(at(i, 'name'), `member "${m.name}" is named twice`);
    seen.set(m.name, i);
  });
  const traffic = w.members.map((m, i) => [m, i] as const).filter(([m]) => m.role === 'traffic');
  const routes = chosen.router.type !== 'none';
  if (traffic.length > 1) {
    issue(at(traffic[1]![1], 'role'), `members ${traffic.map(([m]) => m.name).join(' and ')} both have role traffic, and router ${chosen.router.type} routes one service: give one of them role consumer or worker, or release them as separate services`);
  } else if (traffic.length === 0 && routes) {
    issue(['workload', 'members'], `router ${chosen.router.type} routes traffic to one member: give the API's member role: traffic (or use router: { type: none })`);
  }
  if (w.order) {
    w.order.forEach((n, i) => {
      if (!seen.has(n)) issue(['workload', 'order', i], `no member "${n}" (members: ${[...seen.keys()].join(', ')})`);
      else if (w.order!.indexOf(n) !== i) issue(['workload', 'order', i], `member "${n}" is listed twice`);
    });
    const missing = [...seen.keys()].filter((n) => !w.order!.includes(n));
    if (missing.length) issue(['workload', 'order'], `must list every member once; missing: ${missing.join(', ')}`);
  }
  w.members.forEach((m, i) => {
    for (const v of Object.keys(config.versions)) {
      if (v === config.stable || imageOf(m, config, v)) continue;
      issue(at(i), `member ${m.name} has no image of ${v}: set versions.${v}.image, or the member's image: with {{version}}`);
    }
  });
}
