/**
 * The gates of the current step: verdict, value against threshold, sample size against the size
 * needed, and a sparkline of recent values. The `o` view shows orgs by version instead.
 */
import { Box, Text } from 'ink';
import { compactCount, fit, LABEL_WIDTH, sampleText, sparkline, valueVsThreshold } from './format.js';
import { verdictTone } from './model.js';
import { Row, type ViewProps } from './Rollout.js';
import { paint } from './theme.js';

/** Fixed columns of a gate line: name, verdict, value vs threshold, samples. */
const NAME = 11;
const VERDICT = 13;
const VALUE = 18;
const SAMPLES = 13;

/** One line per gate of the step. */
export function Gates({ model: m, columns, color }: ViewProps) {
  if (!m.gates.length) {
    if (m.ungated) {
      return (
        <Row label="gates">
          <Text {...paint(color, 'warn')}>none: nothing will roll back by itself</Text>
        </Row>
      );
    }
    if (m.phase !== 'holding' && m.phase !== 'paused') return null;
    return (
      <Row label="gates">
        <Text {...paint(color, 'dim')}>{m.stepGates?.length === 0 ? 'none at this step' : 'not measured yet at this step'}</Text>
      </Row>
    );
  }
  const sparkWidth = Math.max(0, Math.min(24, columns - LABEL_WIDTH - NAME - VERDICT - VALUE - SAMPLES - 1));
  return (
    <Box flexDirection="column">
      {m.gates.map((g, i) => (
        <Row key={g.gate} label={i === 0 ? 'gates' : ''}>
          <Text>{fit(g.gate, NAME)}</Text>
          <Text {...paint(color, verdictTone(g.verdict))}>{fit(g.verdict, VERDICT)}</Text>
          <Text>{fit(valueVsThreshold(g), VALUE)}</Text>
          <Text {...paint(color, 'dim')}>{fit(sampleText(g), SAMPLES)}</Text>
          <Text {...paint(color, verdictTone(g.verdict))}>{sparkline(g.history, sparkWidth)}</Text>
        </Row>
      ))}
    </Box>
  );
}

/** Orgs by version: how many, and whether by pin, by wave or by the unpinned rule. */
export function Orgs({ model: m, columns, color }: ViewProps) {
  const o = m.orgs;
  if (!o) {
    return (
      <Row label="orgs">
        <Text {...paint(color, 'dim')}>no orgs: section in the config</Text>
      </Row>
    );
  }
  const rows = [...o.byVersion.map((c) => ({ version: c.version, count: c.count, why: why(c) })), ...(o.bySplit ? [{ version: 'split', count: o.bySplit, why: 'unpinned, sticky by the weights' }] : [])];
  const barWidth = Math.max(5, Math.min(30, columns - LABEL_WIDTH - 8 - 8 - 36));
  return (
    <Box flexDirection="column">
      <Row label="orgs">
        <Text>{`${compactCount(o.total)} orgs${o.unpinnedTo ? `; unpinned ones follow ${o.unpinnedTo}` : ''}`}</Text>
      </Row>
      {rows.map((r) => (
        <Row key={r.version} label="">
          <Text {...paint(color, r.version === m.candidate ? 'accent' : 'plain')}>{fit(r.version, 8)}</Text>
          <Text>{String(r.count).padStart(6)}  </Text>
          <Text {...paint(color, r.version === m.candidate ? 'accent' : 'plain')}>{'█'.repeat(o.total ? Math.max(1, Math.round((r.count / o.total) * barWidth)) : 0)}</Text>
          <Text {...paint(color, 'dim')}>{`  ${r.why}`}</Text>
        </Row>
      ))}
    </Box>
  );
}

function why(c: { pinned: number; wave: number; unpinned: number }): string {
  return [c.pinned && `${c.pinned} pinned`, c.wave && `${c.wave} by wave`, c.unpinned && `${c.unpinned} unpinned`].filter(Boolean).join(', ');
}
