/**
 * The org directory: which orgs exist and their groups, from `orgs.file`, `orgs.list` and
 * `orgs.groups`. Every id is checked against the strict org pattern here, before it can reach
 * a router, a query or a rule.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { ORG_PATTERN } from '../config/patterns.js';
import type { Config } from '../config/schema.js';
import { UsageError } from '../errors.js';

/** Known orgs and groups. */
export interface OrgDirectory {
  /** Every known org id, sorted. */
  ids: string[];
  /** Group name → org ids. */
  groups: Record<string, string[]>;
}

/** Read the directory a config names (`dir` resolves orgs.file). */
export function loadOrgDirectory(config: Config, dir: string): OrgDirectory {
  const ids = new Set<string>(config.orgs?.list ?? []);
  const groups: Record<string, Set<string>> = {};
  for (const [g, members] of Object.entries(config.orgs?.groups ?? {})) {
    groups[g] = new Set(members);
    members.forEach((m) => ids.add(m));
  }
  const file = config.orgs?.file;
  if (file) {
    const path = isAbsolute(file) ? file : resolve(dir, file);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new UsageError(`orgs.file ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(e)}`, 'write one org per line: `id [group …]`');
    }
    text.split('\n').forEach((line, i) => {
      const [id, ...memberOf] = line.replace(/#.*/, '').trim().split(/\s+/).filter(Boolean);
      if (!id) return;
      if (!ORG_PATTERN.test(id)) throw new UsageError(`${path}:${i + 1}: "${id}" is not an org id (letters, digits, '.', '_' or '-')`);
      ids.add(id);
      for (const g of memberOf) (groups[g] ??= new Set()).add(id);
    });
  }
  // Header matching is case-insensitive at the ALB (and in HTTP itself for names; values vary by
  // router): two ids that differ only in case would be one org to some routers and two to others.
  const byFolded = new Map<string, string>();
  for (const id of [...ids].sort()) {
    const twin = byFolded.get(id.toLowerCase());
    if (twin !== undefined) {
      throw new UsageError(`orgs "${twin}" and "${id}" differ only in case; some routers match org ids without case, so they would be one org there`, 'rename one of them in orgs.file, orgs.list or orgs.groups');
    }
    byFolded.set(id.toLowerCase(), id);
  }
  return { ids: [...ids].sort(), groups: Object.fromEntries(Object.entries(groups).map(([g, m]) => [g, [...m].sort()])) };
}

/**
 * Resolve what a command names (ids, a group, or all) to known org ids. Unknown ids and groups
 * are usage errors that list what is wrong.
 */
export function selectOrgs(dir: OrgDirectory, pick: { ids?: string[]; group?: string; all?: boolean }): string[] {
  if (pick.all) return dir.ids;
  if (pick.group !== undefined) {
    const members = dir.groups[pick.group];
    if (!members) throw new UsageError(`unknown group ${pick.group} (known: ${Object.keys(dir.groups).join(', ') || 'none'})`, 'groups come from orgs.groups or the group column of orgs.file');
    return members;
  }
  const ids = pick.ids ?? [];
  if (ids.length === 0) throw new UsageError('name the orgs to move: ORG…, --group G or --all');
  const bad = ids.filter((id) => !ORG_PATTERN.test(id));
  if (bad.length) throw new UsageError(`not an org id: ${bad.map((b) => JSON.stringify(b)).join(', ')}`, "org ids are letters, digits, '.', '_' or '-'");
  const known = new Set(dir.ids);
  const unknown = ids.filter((id) => !known.has(id));
  if (unknown.length) throw new UsageError(`unknown org${unknown.length > 1 ? 's' : ''}: ${unknown.slice(0, 10).join(', ')}${unknown.length > 10 ? ` and ${unknown.length - 10} more` : ''}`, 'add them to orgs.file or orgs.list in deploy.yaml');
  return [...new Set(ids)];
}
