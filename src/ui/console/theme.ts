/**
 * Tones to ink text props. With colour off (NO_COLOR, --no-color, no colour on the terminal) no
 * colour prop is set at all, so ink writes no colour codes.
 */
import type { Tone } from './model.js';

const COLOURS: Record<Tone, string | undefined> = {
  plain: undefined,
  good: 'green',
  warn: 'yellow',
  bad: 'red',
  alert: 'magenta',
  dim: 'gray',
  accent: 'cyan',
};

/** Ink `<Text>` props for a tone. */
export function paint(color: boolean, tone: Tone): { color?: string } {
  const c = color ? COLOURS[tone] : undefined;
  return c ? { color: c } : {};
}
