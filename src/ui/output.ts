/**
 * Output for every command. With `--output json` stdout carries one JSON object per line and
 * nothing else; human text goes to stderr. In text mode results go to stdout, notes to stderr.
 * Colour only on a TTY, never with NO_COLOR or --no-color.
 */
import { Chalk, type ChalkInstance } from 'chalk';
import type { EngineEvent } from '../engine/events.js';
import { GithubActions } from './github.js';
import { renderEventLine } from './plain.js';

/** Output format chosen with --output. */
export type Format = 'text' | 'json';

/** Where a command writes. */
export interface Output {
  readonly format: Format;
  readonly color: ChalkInstance;
  /** An engine event: a JSON line, or a human line when it is worth one. */
  event(event: EngineEvent): void;
  /** A command's result: `json` as one line in JSON mode, `text` otherwise. */
  result(json: Record<string, unknown>, text: string): void;
  /** A note for people (stderr). */
  note(text: string): void;
}

/** Streams an Output writes to (injected so tests capture them). */
export interface Streams {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

/** Hold progress in JSON: at most one event this often within a step. */
const JSON_HOLD_EVERY_MS = 30_000;

/** Build the output of one command run. */
export function createOutput(format: Format, colorFlag: boolean, streams: Streams): Output {
  const tty = format === 'text' ? streams.stdout.isTTY : streams.stderr.isTTY;
  const useColor = colorFlag && !('NO_COLOR' in streams.env && streams.env.NO_COLOR !== '') && Boolean(tty);
  const color = new Chalk({ level: useColor ? 1 : 0 });
  const holdEvery = streams.env.CI || !tty ? 60_000 : 15_000;
  let lastHold = 0;
  const lastVerdict = new Map<string, string>();
  const github = new GithubActions(streams.env, streams.stderr);
  /** The last hold printed in JSON: which rollout's step, and when. */
  const jsonHold = { key: '', at: 0 };
  return {
    format,
    color,
    event(event) {
      github.event(event);
      if (format === 'json') {
        // A hold's progress: its first check, then at most every 30 s, not a line per check.
        if (event.event === 'hold') {
          const now = Date.parse(event.at);
          const key = `${event.rolloutId}:${event.step}`;
          if (key === jsonHold.key && now - jsonHold.at < JSON_HOLD_EVERY_MS) return;
          jsonHold.key = key;
          jsonHold.at = now;
        }
        streams.stdout.write(`${JSON.stringify(event)}\n`);
        return;
      }
      // The step line already says how long the hold is; hold lines are reminders after that.
      if (event.event === 'step') lastHold = Date.parse(event.at);
      // Gates are checked every few seconds; a person needs a line only when a verdict changes —
      // within this rollout: the next one (the demo runs two) starts its steps with no verdicts.
      if (event.event === 'gate') {
        const key = `${event.rolloutId}:${event.step}:${event.gate}`;
        if (lastVerdict.get(key) === event.verdict) return;
        lastVerdict.set(key, event.verdict);
      }
      if (event.event === 'hold') {
        const now = Date.parse(event.at);
        if (now - lastHold < holdEvery) return;
        lastHold = now;
      }
      const line = renderEventLine(event, color);
      if (line) streams.stdout.write(`${line}\n`);
    },
    result(json, text) {
      if (format === 'json') streams.stdout.write(`${JSON.stringify(json)}\n`);
      else streams.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    note(text) {
      streams.stderr.write(`${text}\n`);
    },
  };
}
