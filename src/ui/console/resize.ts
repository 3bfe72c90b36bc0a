/**
 * A narrower terminal without ghost lines. Most terminals (tmux, VTE, iTerm2, kitty, WezTerm,
 * Windows Terminal, VS Code) re-wrap what is on screen when they narrow, so a console line as wide
 * as the old terminal now takes two rows. Ink erases its last frame by its count of lines, not of
 * rows, and the frame's top rows — the header — stayed behind above the new frame. Just before
 * ink's own handler runs, the rows the re-wrap added are erased, so ink's erase then reaches the
 * frame's top.
 */

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b\][^\u0007]*\u0007/g;

/** Terminal cells of one line (the console draws no double-width characters). */
function cells(line: string): number {
  return [...line.replace(ANSI, '')].length;
}

/** Rows `frame` takes once re-wrapped at `columns`. */
export function reflowedRows(frame: string, columns: number): number {
  return frame.split('\n').reduce((rows, line) => rows + Math.max(1, Math.ceil(cells(line) / Math.max(1, columns))), 0);
}

/**
 * What to write before ink erases its last `frame` (lines, no trailing newline) on a terminal now
 * `columns` wide: with the cursor on the row below the frame, erase that row and the rows the
 * re-wrap added, and stay on the highest of them. Ink's erase of one row per line plus one then
 * ends on the frame's first row. Empty when nothing was re-wrapped.
 */
export function eraseAddedRows(frame: string, columns: number): string {
  const added = reflowedRows(frame, columns) - frame.split('\n').length;
  if (added <= 0) return '';
  const eraseLine = '\u001b[2K';
  const up = '\u001b[1A';
  return `${`${eraseLine}${up}`.repeat(added)}${eraseLine}\u001b[G`;
}

/**
 * Whether the terminal re-wraps long lines when it narrows. xterm cuts them instead (and then
 * ink's erase is right as it is); tmux re-wraps whatever terminal it runs in.
 */
export function terminalRewraps(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.TMUX) || !env.XTERM_VERSION;
}
