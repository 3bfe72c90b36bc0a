/**
 * deploy.yaml's text to a config: YAML with source positions, validated by the schema. Every
 * error names the file, line and column, the field's path and what was expected, and exits 2.
 */
import { LineCounter, parseDocument, isMap, isPair, isScalar, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { UsageError } from '../errors.js';
import { configSchema, type Config } from './schema.js';

/** One problem in the file, positioned. */
export interface ConfigProblem {
  line: number;
  col: number;
  path: string;
  message: string;
}

/** Parse and validate config text; `label` names the file in messages. */
export function parseConfig(text: string, label: string): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const pos = lines.linePos(e.pos[0]);
      return `${label}:${pos.line}:${pos.col} ${e.message.split('\n')[0]}`;
    });
    throw new UsageError(`${label} is not valid YAML:\n  ${problems.join('\n  ')}`, 'fix the YAML syntax at the position shown');
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    // yaml refuses documents whose aliases expand without bound ("billion laughs").
    throw new UsageError(`${label} is not valid YAML: ${(e as Error).message.slice(0, 200)}`, 'write the values out instead of nesting aliases');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError(`${label}:1:1 must be a YAML mapping of settings (service, stable, versions, router, …)`, 'run `deploy init` for a commented example');
  }
  const result = configSchema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.flatMap((issue) => locate(issue, doc, lines));
  problems.sort((a, b) => a.line - b.line || a.col - b.col);
  const shown = problems.map((p) => `${label}:${p.line}:${p.col} ${p.path}: ${p.message}`);
  throw new UsageError(shown.join('\n'), `fix ${problems.length === 1 ? 'this field' : 'these fields'} in ${label}; \`deploy schema\` prints the full schema`);
}

/** Positions of one zod issue: the offending node, or for unknown keys each key. */
function locate(issue: z.core.$ZodIssue, doc: Document, lines: LineCounter): ConfigProblem[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => {
      const node = keyNode(doc, path, key);
      const pos = lines.linePos(node?.range?.[0] ?? 0);
      const routerType = doc.getIn(['router', 'type']);
      return { line: pos.line, col: pos.col, path: formatPath([...path, key]), message: `unknown field (allowed here: ${allowedKeys(path, routerType === 'alb' ? 'alb' : undefined)})` };
    });
  }
  const { node, found } = deepestNode(doc, path);
  const pos = lines.linePos(node?.range?.[0] ?? 0);
  let message = issue.message;
  if (!found && issue.code === 'invalid_type') message = 'is required';
  return [{ line: pos.line, col: pos.col, path: formatPath(path) || '(top level)', message }];
}

/** The node at `path`, or its deepest existing ancestor (a missing field is reported at its parent). */
function deepestNode(doc: Document, path: (string | number)[]): { node: Node | undefined; found: boolean } {
  for (let i = path.length; i >= 0; i--) {
    const node = doc.getIn(path.slice(0, i), true) as Node | undefined;
    if (node && typeof node === 'object' && 'range' in node) return { node, found: i === path.length };
  }
  return { node: doc.contents ?? undefined, found: false };
}

/** The key node of `key` in the mapping at `path`. */
function keyNode(doc: Document, path: (string | number)[], key: string): Node | undefined {
  const map = path.length ? doc.getIn(path, true) : doc.contents;
  if (!isMap(map)) return undefined;
  for (const item of map.items) {
    if (isPair(item) && isScalar(item.key) && item.key.value === key) return item.key;
  }
  return map;
}

/** Allowed keys at a config path, read from the schema's shape for the message. */
function allowedKeys(path: (string | number)[], routerType?: 'alb'): string {
  const where = path.filter((p) => typeof p === 'string').join('.') + (routerType && path.join('.') === 'router' ? `.${routerType}` : '');
  const known: Record<string, string> = {
    '': 'service, stable, versions, router, state, strategy, prometheus, gates, orgs',
    strategy: 'canary, orgWaves, blueGreen',
    'strategy.blueGreen': 'steps, stepHold, bake, healthTimeout, checkInterval, inconclusive',
    'strategy.orgWaves': 'waves, checkInterval, inconclusive',
    'strategy.orgWaves.waves': 'group, share, all, hold, pause',
    orgs: 'unpinned, file, list, groups',
    'strategy.canary': 'steps, defaultHold, checkInterval, inconclusive',
    'strategy.canary.inconclusive': 'after, action',
    prometheus: 'url, timeout, versionLabel, orgLabel, labels',
    'strategy.canary.steps': 'weight, hold, pause',
    state: 'type, dir, lease',
    router: 'type, listen, admin, prefix, binary, modulesDir, workerProcesses, orgHeader, orgCookie',
    'router.alb': 'type, listenerArn, rule, targetGroups, region, profile, endpointUrl, orgHeader, maxRules',
  };
  if (/^versions\.[^.]+$/.test(where)) return 'endpoints';
  if (where === 'gates') return 'name, type, and per type: errorRate (maxIncrease, confidence, requests, errors, perOrg), latencyP99 (max, maxFactor, minRequests, histogram), query (query, threshold, direction)';
  return known[where] ?? 'see `deploy schema`';
}

/** `strategy.canary.steps[2].weight` from a path. */
export function formatPath(path: readonly (string | number)[]): string {
  return path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${p}` : p), '');
}
