/**
 * The bottom of the live area: who drives, a pending y/n question or the last notice, the key
 * line, and the `?` help.
 */
import { Box, Text } from 'ink';
import { isActive, keyHints } from './keys.js';
import { Row, type ViewProps } from './Rollout.js';
import { paint } from './theme.js';

const HELP: [string, string][] = [
  ['p', 'promote now: skip the rest of this hold (asks y/n first)'],
  ['a', 'abort: all traffic back to stable in one write (asks y/n)'],
  ['space', 'pause the hold, or resume a paused rollout'],
  ['o', 'orgs by version instead of the gates'],
  ['?', 'this help; Esc closes it'],
];

/** What leaving does: a driving console stops its driver; a watcher drives nothing. */
const LEAVE: Record<ViewProps['model']['mode'], string> = {
  drive: 'leave, as Ctrl-C: the driver stops between ticks; `deploy resume` carries on from there',
  watch: 'leave: watching drives nothing, so the rollout goes on as it is',
};

/** What each key does, in full. */
export function Help({ model, color }: ViewProps) {
  const help: [string, string][] = [...HELP, ['q', LEAVE[model.mode]]];
  return (
    <Box flexDirection="column">
      {help.map(([key, text], i) => (
        <Row key={key} label={i === 0 ? 'keys' : ''}>
          <Box width={7} flexShrink={0}>
            <Text bold {...paint(color, 'accent')}>{key}</Text>
          </Box>
          <Text>{text}</Text>
        </Row>
      ))}
    </Box>
  );
}

/** Driver, question or notice, and the key line. */
export function Footer({ model: m, color }: ViewProps) {
  // The last frame stays on the terminal after the console closes: no keys, no driver left.
  if (m.exitCode !== undefined) return null;
  const d = m.driver;
  const driver = d
    ? `${d.here ? 'this process drives' : `driven by ${d.owner}`} (pid ${d.pid})`
    : !isActive(m)
      ? 'none'
      : m.mode === 'watch'
      ? 'none running: `deploy resume` carries on'
      : 'none running: space or p carries on from here';
  return (
    <Box flexDirection="column">
      <Row label="driver">
        <Text {...paint(color, 'dim')}>{driver}</Text>
      </Row>
      {m.confirm ? (
        <Text bold {...paint(color, m.confirm.action === 'abort' ? 'bad' : 'warn')}>{`${m.confirm.question} [y/N]`}</Text>
      ) : m.notice ? (
        <Text {...paint(color, 'warn')}>{m.notice}</Text>
      ) : null}
      <Text wrap="truncate-end">
        {keyHints(m).map((h, i) => (
          <Text key={h.key}>
            {i > 0 ? '  ' : ''}
            <Text bold={h.enabled} {...paint(color, h.enabled ? 'accent' : 'dim')}>{h.key}</Text>
            <Text {...paint(color, h.enabled ? 'plain' : 'dim')}>{` ${h.label}`}</Text>
          </Text>
        ))}
      </Text>
    </Box>
  );
}
