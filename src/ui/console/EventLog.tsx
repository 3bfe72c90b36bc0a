/**
 * The event log: each finished line is printed once by ink's `<Static>` above the live area and
 * then scrolls with the terminal like plain output, so the history survives leaving the console.
 */
import { Static, Text } from 'ink';
import type { ConsoleModel } from './model.js';
import { paint } from './theme.js';

/** Finished lines of the log. */
export function EventLog({ log, color }: { log: ConsoleModel['log']; color: boolean }) {
  return (
    <Static items={log}>
      {(line) => (
        <Text key={line.id} {...paint(color, line.tone)}>
          {line.text}
        </Text>
      )}
    </Static>
  );
}
