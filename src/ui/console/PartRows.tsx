/**
 * A row per part of the rollout: a release group's members (ready replicas per version) and a
 * fleet's targets (live weights and generation), each with the verdicts of its own gates. Nothing
 * is drawn for a config without members or targets.
 */
import { Box, Text } from 'ink';
import { formatWeights } from '../plain.js';
import { fit } from './format.js';
import { verdictTone } from './model.js';
import { memberGates, targetGates, type PartGate } from './parts.js';
import { Row, type ViewProps } from './Rollout.js';
import { paint } from './theme.js';

/** Widest name column a row gives its part; longer names are cut. */
const NAME_MAX = 18;
/** Width of a member's role column (`consumer`). */
const ROLE = 10;

/** `errors passed · latency inconclusive`, each verdict in its tone; a gate not checked yet is dim. */
function GateVerdicts({ gates, color }: { gates: PartGate[]; color: boolean }) {
  if (!gates.length) return null;
  return (
    <Text>
      {'  '}
      {gates.map((g, i) => (
        <Text key={g.name}>
          {i > 0 ? <Text {...paint(color, 'dim')}> · </Text> : null}
          {`${g.name} `}
          {g.verdict ? <Text {...paint(color, verdictTone(g.verdict))}>{g.verdict}</Text> : <Text {...paint(color, 'dim')}>not checked</Text>}
        </Text>
      ))}
    </Text>
  );
}

/** The column a set of names takes: the longest, up to NAME_MAX, and a space. */
const nameWidth = (names: string[]) => Math.min(NAME_MAX, Math.max(0, ...names.map((n) => n.length))) + 1;

/** `lis-testresult  consumer  v1 1/1 · v2 0/1  errors-lis passed`, one row per member. */
export function Members({ model: m, color }: ViewProps) {
  const view = m.members;
  if (!view) return null;
  const width = nameWidth(view.rows.map((r) => r.name));
  return (
    <Box flexDirection="column">
      {view.rows.map((r, i) => (
        <Row key={r.name} label={i === 0 ? 'members' : ''}>
          <Text wrap="truncate-end">
            {fit(r.name, width)}
            <Text {...paint(color, 'dim')}>{fit(r.role ?? '', ROLE)}</Text>
            {[r.versions.map((v) => `${v.version} ${v.ready}/${v.desired}`).join(' · '), r.detail].filter(Boolean).join('; ')}
            <GateVerdicts gates={memberGates(m, r)} color={color} />
          </Text>
        </Row>
      ))}
      {view.error !== undefined ? (
        <Row label={view.rows.length ? '' : 'members'}>
          <Text wrap="truncate-end" {...paint(color, 'alert')}>{`could not be read: ${view.error}`}</Text>
        </Row>
      ) : null}
    </Box>
  );
}

/** `eu  v1 95% · v2 5% (generation 4)  errors passed · reachable passed`, one row per target. */
export function Targets({ model: m, color }: ViewProps) {
  const view = m.targets;
  if (!view) return null;
  const width = nameWidth(view.rows.map((r) => r.target));
  return (
    <Box flexDirection="column">
      {view.rows.map((r, i) => (
        <Row key={r.target} label={i === 0 ? 'targets' : ''}>
          <Text wrap="truncate-end">
            {fit(r.target, width)}
            {r.error !== undefined ? (
              <Text {...paint(color, 'bad')}>{`unreachable: ${r.error}`}</Text>
            ) : (
              <Text>
                {formatWeights(r.weights ?? {})}
                <Text {...paint(color, 'dim')}>{` (generation ${r.generation ?? '?'})`}</Text>
                {r.differs ? <Text {...paint(color, 'warn')}> differs from the record</Text> : null}
              </Text>
            )}
            <GateVerdicts gates={targetGates(m, r.target)} color={color} />
            {/* After the verdicts, which a narrow terminal must not cut. */}
            {r.owes !== undefined ? <Text {...paint(color, 'warn')}>{`  owes ${r.owes}`}</Text> : null}
          </Text>
        </Row>
      ))}
      {view.error !== undefined ? (
        <Row label={view.rows.length ? '' : 'targets'}>
          <Text wrap="truncate-end" {...paint(color, 'alert')}>{`could not be read: ${view.error}`}</Text>
        </Row>
      ) : null}
    </Box>
  );
}
