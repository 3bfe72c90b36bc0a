/**
 * The `query` gate on CloudWatch: its `query` is a Metric Math expression over fixed names for
 * the ALB metrics of the version being judged and of stable, e.g.
 * `100 * (target_5xx + connection_errors) / requests` or `p99 / stable_p99`. Only the names it
 * uses are sent, each over the gate's window, and the expression is evaluated by CloudWatch.
 */
import { ALB_METRICS } from './queries.js';

/** What each name of an expression stands for. */
export interface ExpressionInput {
  metric: string;
  statistic: string;
  /** Stable's series rather than the judged version's. */
  ofStable: boolean;
}

const OWN: Record<string, Omit<ExpressionInput, 'ofStable'>> = {
  requests: { metric: ALB_METRICS.requests, statistic: 'Sum' },
  target_5xx: { metric: ALB_METRICS.targetErrors, statistic: 'Sum' },
  connection_errors: { metric: ALB_METRICS.connectionErrors, statistic: 'Sum' },
  response_time: { metric: ALB_METRICS.responseTime, statistic: 'Average' },
  p99: { metric: ALB_METRICS.responseTime, statistic: 'p99' },
};

/** Every name an expression may use: the version's metrics, and the same of stable as `stable_<name>`. */
export const INPUT_IDS: Record<string, ExpressionInput> = Object.fromEntries(
  Object.entries(OWN).flatMap(([id, input]) => [
    [id, { ...input, ofStable: false }],
    [`stable_${id}`, { ...input, ofStable: true }],
  ]),
);

/**
 * The names `expression` uses, in a fixed order, or why it cannot be sent. Metric Math writes its
 * functions and keywords in capitals, so a lower-case word outside quotes is a query id.
 */
export function expressionInputs(expression: string): string[] | string {
  if (expression.includes('{{')) {
    return `the query is a CloudWatch Metric Math expression, not a PromQL template: write it over ${names()}`;
  }
  const words = expression.replace(/'[^']*'|"[^"]*"/g, ' ').match(/(?<![\w.])[a-z][A-Za-z0-9_]*/g) ?? [];
  const unknown = [...new Set(words.filter((w) => !(w in INPUT_IDS)))];
  if (unknown.length) return `the Metric Math expression names ${unknown.join(', ')}, which is not one of ${names()}`;
  const used = new Set(words);
  if (used.size === 0) return `the Metric Math expression uses none of ${names()}`;
  return Object.keys(INPUT_IDS).filter((id) => used.has(id));
}

const names = () => Object.keys(INPUT_IDS).join(', ');
