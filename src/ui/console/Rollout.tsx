/**
 * The top of the live area: which rollout, the step ladder, the traffic split and the hold.
 */
import { Box, Text } from 'ink';
import type { ReactNode } from 'react';
import { canMoveOn } from './keys.js';
import { fit, LABEL_WIDTH, percent, progressCells, requestCount, seconds, splitCells, timeLeft } from './format.js';
import type { ConsoleModel, Share, Tone } from './model.js';
import { paint } from './theme.js';

/** Props of every console component: the model, the width to fill, and whether to colour. */
export interface ViewProps {
  model: ConsoleModel;
  columns: number;
  color: boolean;
}

const PHASE_TONE: Record<ConsoleModel['phase'], Tone> = {
  none: 'dim',
  pending: 'accent',
  progressing: 'accent',
  holding: 'accent',
  paused: 'warn',
  promoted: 'good',
  rolled_back: 'bad',
  aborted: 'bad',
  failed: 'bad',
};

/** A row with a label in the left column. */
export function Row({ label, children }: { label: string; children: ReactNode }) {
  return (
    <Box>
      <Box width={LABEL_WIDTH} flexShrink={0}>
        <Text>{label}</Text>
      </Box>
      <Box flexGrow={1}>{children}</Box>
    </Box>
  );
}

/**
 * `patient-api  v1 → v2  rollout 3f2a1c9d` … `HOLDING step 2/5`. The row takes the width ink
 * lays out, never a width of its own: right after a resize ink draws once more with the
 * previous `columns`, and a row wider than the terminal would wrap in it and be left behind.
 */
export function Header({ model: m, columns, color }: ViewProps) {
  const where = m.step >= 1 && m.ladder.length ? ` step ${m.step}/${m.ladder.length}` : '';
  const right = `${m.phase.replace('_', ' ').toUpperCase()}${where}`;
  const left = m.rolloutId ? `${m.service}  ${m.stable} → ${m.candidate}  rollout ${m.rolloutId}` : `${m.service}  no rollout yet`;
  return (
    <Box justifyContent="space-between">
      <Text bold wrap="truncate-end">{fit(left, Math.max(10, columns - right.length - 2)).trimEnd()}</Text>
      <Box flexShrink={0} marginLeft={2}>
        <Text bold {...paint(color, PHASE_TONE[m.phase])}>{right}</Text>
      </Box>
    </Box>
  );
}

/** `1 → 5 → [25] → 50 → 100`: done steps dim, the current one bracketed. */
export function Ladder({ model: m, color }: ViewProps) {
  if (!m.ladder.length) return null;
  return (
    <Row label="steps">
      <Text wrap="truncate-end">
        {m.ladder.map((r, i) => (
          <Text key={i}>
            {i > 0 ? <Text {...paint(color, 'dim')}> → </Text> : null}
            <Text bold={r.status === 'current'} {...paint(color, r.status === 'done' ? 'good' : r.status === 'current' ? 'accent' : 'plain')}>
              {r.status === 'current' ? `[${r.label}]` : r.label}
              {r.pause ? '‖' : ''}
            </Text>
          </Text>
        ))}
      </Text>
    </Row>
  );
}

const ROLE_TONE: Record<Share['role'], Tone> = { candidate: 'accent', stable: 'plain', other: 'warn' };
const ROLE_CELL: Record<Share['role'], string> = { candidate: '█', stable: '░', other: '▒' };

/** The live split as a bar: candidate first, in its own cells, so the bar reads without colour. */
function SplitBar({ shares, width, color }: { shares: Share[]; width: number; color: boolean }) {
  const ordered = [...shares].sort((a, b) => order(a) - order(b));
  const cells = splitCells(ordered, width);
  return (
    <Text>
      {ordered.map((s, i) => (
        <Text key={s.version} {...paint(color, ROLE_TONE[s.role])}>
          {ROLE_CELL[s.role].repeat(cells[i] ?? 0)}
        </Text>
      ))}
    </Text>
  );
}

const order = (s: Share) => (s.role === 'candidate' ? 0 : s.role === 'other' ? 1 : 2);

/** The traffic bar with each version's share, and the write in flight if there is one. */
export function Traffic({ model: m, columns, color }: ViewProps) {
  if (!m.weights.length) return null;
  const ordered = [...m.weights].sort((a, b) => order(a) - order(b));
  const legend = ordered.map((s) => `${ROLE_CELL[s.role]} ${s.version} ${percent(s.percent)}`).join('  ');
  // The bar takes whatever the terminal leaves beside the legend: a wide terminal, a long bar.
  const width = Math.max(10, columns - LABEL_WIDTH - legend.length - 2);
  return (
    <>
      <Row label="traffic">
        <Text wrap="truncate-end">
          <SplitBar shares={m.weights} width={width} color={color} />
          {`  ${legend}`}
        </Text>
      </Row>
      {m.inFlight ? (
        <Row label="">
          <Text {...paint(color, 'accent')}>{`writing ${m.inFlight.map((s) => `${s.version} ${percent(s.percent)}`).join(' · ')}…`}</Text>
        </Row>
      ) : null}
    </>
  );
}

/** The hold as a progress bar with the time left. */
export function Hold({ model: m, columns, color }: ViewProps) {
  const h = m.hold;
  if (!h) return null;
  const text = h.frozen
    ? `paused, ${timeLeft(h.remainingMs)} left of ${timeLeft(h.totalMs)}`
    : h.remainingMs > 0
      ? `${timeLeft(h.remainingMs)} left of ${timeLeft(h.totalMs)}`
      : 'hold over: waiting for the gates to pass';
  const width = Math.max(10, columns - LABEL_WIDTH - text.length - 2);
  const { filled, empty } = progressCells(h.fraction, width);
  return (
    <Row label="hold">
      <Text wrap="truncate-end">
        <Text {...paint(color, h.frozen ? 'warn' : 'accent')}>{'█'.repeat(filled)}</Text>
        <Text {...paint(color, 'dim')}>{'░'.repeat(empty)}</Text>
        {`  ${text}`}
      </Text>
    </Row>
  );
}

/**
 * SAFE once a rollback or an abort has all traffic on stable, verified: since when, how long it
 * took (from the fault's start when the demo knows it, else from the check that failed), and the
 * users harmed — the candidate's failed requests beyond stable's error rate.
 */
export function Safety({ model: m, color }: ViewProps) {
  const s = m.safety;
  if (!s || (m.phase !== 'rolled_back' && m.phase !== 'aborted')) return null;
  const took =
    s.timeToSafetyMs !== undefined ? `, ${seconds(s.timeToSafetyMs)} after the fault began`
    : s.afterGate ? `, ${seconds(s.afterGate.ms)} after gate ${s.afterGate.gate} failed`
    : '';
  return (
    <Row label="safety">
      <Box flexDirection="column">
        <Text>
          <Text bold {...paint(color, 'good')}>SAFE</Text>
          {`  all traffic on ${s.stable} since ${new Date(s.at).toISOString().slice(11, 19)}${took}`}
        </Text>
        {s.excessFailures !== undefined ? (
          <Text>{`      users got ${requestCount(s.excessFailures)} failed request${s.excessFailures === 1 ? '' : 's'} beyond ${s.stable}'s error rate`}</Text>
        ) : null}
      </Box>
    </Row>
  );
}

const PAUSE_HINT = {
  operator: 'space resumes, p promotes, a aborts',
  step: 'the plan waits for a manual go: p promotes, a aborts',
  inconclusive: 'the gates stayed inconclusive: space gives them more time, p promotes, a aborts',
  stuck: 'the stable Deployment did not roll out the candidate: space tries again, a aborts',
} as const;

/** The same, for a watcher with no driver to ask. */
const PAUSE_HINT_NO_DRIVER = {
  operator: '`deploy resume` carries on, a aborts',
  step: 'the plan waits for a manual go: `deploy promote` carries on, a aborts',
  inconclusive: 'the gates stayed inconclusive: `deploy resume` gives them more time, a aborts',
  stuck: 'the stable Deployment did not roll out the candidate: `deploy resume` tries again, a aborts',
} as const;

/** One line on why the rollout stands where it does: a pause, its outcome, or the last error. */
export function Status({ model: m, color }: ViewProps) {
  const line: [string, Tone] | undefined =
    m.phase === 'paused' && m.pauseReason === 'operator' ? [`paused by ${m.pausedBy ? `${m.pausedBy.by} at ${m.pausedBy.at}` : 'an operator'}: ${(canMoveOn(m) ? PAUSE_HINT : PAUSE_HINT_NO_DRIVER).operator}`, 'warn']
    : m.phase === 'paused' && m.pauseReason ? [(canMoveOn(m) ? PAUSE_HINT : PAUSE_HINT_NO_DRIVER)[m.pauseReason], 'warn']
    : m.phase === 'promoted' ? [`promoted: ${m.outcome ?? `${m.candidate} took all traffic`}`, 'good']
    : m.phase === 'aborted' ? [m.outcome?.startsWith('aborted') ? m.outcome : `aborted: ${m.outcome ?? ''}`, 'bad']
    : m.phase === 'rolled_back' ? [`rolled back: ${m.outcome ?? ''}`, 'bad']
    : m.phase === 'failed' ? [`router writes kept failing: ${m.lastError ?? ''} (${canMoveOn(m) ? 'space' : '`deploy resume`'} retries)`, 'bad']
    : m.lastError ? [`error: ${m.lastError} (retrying)`, 'bad']
    : m.waitingFor ? [`waiting for ${m.candidate}'s servers to be ready: ${m.waitingFor}`, 'warn']
    : undefined;
  if (!line) return null;
  return (
    <Row label="">
      <Text {...paint(color, line[1])}>{line[0]}</Text>
    </Row>
  );
}
