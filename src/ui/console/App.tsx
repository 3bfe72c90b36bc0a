/**
 * The cutover console: finished log lines in `<Static>`, and below them the live area — rollout,
 * ladder, traffic, hold or safety, a release group's members and a fleet's targets, gates (or orgs, or help) and the keys. It renders the model and
 * hands keys to `onKey`; what a key means is decided in keys.ts, what it does by the console's runner.
 */
import { Box, useInput, useWindowSize } from 'ink';
import { EventLog } from './EventLog.js';
import { Footer, Help } from './Footer.js';
import { Gates, Orgs } from './Gates.js';
import type { KeyPress } from './keys.js';
import type { ConsoleModel } from './model.js';
import { Members, Targets } from './PartRows.js';
import { Header, Hold, Ladder, Safety, Status, Traffic, type ViewProps } from './Rollout.js';

/** Props of the console. */
export interface AppProps {
  model: ConsoleModel;
  /** Colour on (off with NO_COLOR, --no-color, or a terminal without colour). */
  color: boolean;
  /** Where keys go; without it the console only shows. */
  onKey?: (key: KeyPress) => void;
}

/** The whole console. Its width follows the terminal's, so a resize redraws it to fit. */
export function App({ model, color, onKey }: AppProps) {
  const { columns } = useWindowSize();
  useInput((input, key) => onKey?.({ input, ctrl: key.ctrl, escape: key.escape }), { isActive: onKey !== undefined });
  return (
    <>
      <EventLog log={model.log} color={color} />
      <LiveArea model={model} columns={columns} color={color} />
    </>
  );
}

/** The part redrawn in place, `columns` wide; also rendered alone to measure the last frame at a resize. */
export function LiveArea(view: ViewProps) {
  const { model } = view;
  return (
    <Box flexDirection="column" marginTop={1}>
      <Header {...view} />
      <Ladder {...view} />
      <Traffic {...view} />
      <Hold {...view} />
      <Safety {...view} />
      <Status {...view} />
      <Members {...view} />
      <Targets {...view} />
      {model.showHelp ? <Help {...view} /> : model.showOrgs ? <Orgs {...view} /> : <Gates {...view} />}
      <Footer {...view} />
    </Box>
  );
}
