/**
 * `deploy report`'s core: read a rollout's records, the stored state and the chain's verdict from
 * a project's state store, and tell the rollout. Rendering is `renderHtml` / `renderMarkdown`.
 */
import type { Project } from '../cli/context.js';
import { UsageError } from '../errors.js';
import type { AuditRecord } from '../state/store.js';
import { extractReport, rolloutIds } from './extract.js';
import type { RolloutReport } from './model.js';

export { renderHtml } from './html.js';
export { renderMarkdown } from './markdown.js';
export type { RolloutReport } from './model.js';

/** The report of rollout `rolloutId` (default: the latest in the audit log). */
export async function loadReport(project: Pick<Project, 'store' | 'config'>, rolloutId: string | undefined, now: number): Promise<RolloutReport> {
  const store = project.store;
  // A log that cannot be read is reported by the verification below, as `deploy history` does.
  const records: AuditRecord[] = await store.audit.read().catch(() => []);
  const verification = await store.audit.verify();
  const state = await store.load();
  const report = extractReport({ service: project.config.service, records, state, verification, now, ...(rolloutId !== undefined ? { rolloutId } : {}) });
  if (report) return report;
  if (rolloutId === undefined) throw new UsageError(`no rollout of ${project.config.service} is recorded in ${store.location}`, 'start one with `deploy promote --to VERSION`');
  const known = rolloutIds(records);
  throw new UsageError(
    `--rollout ${rolloutId}: no such rollout in the audit log of ${project.config.service}`,
    known.length ? `recorded rollouts, latest last: ${known.slice(-10).join(', ')}` : 'no rollout is recorded yet',
  );
}
