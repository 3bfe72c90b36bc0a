/**
 * Metrics for a config that names no source: gates that only run journeys need none, and nothing
 * asks. Were something to ask, every answer is unreachable, never a pass.
 */
import type { GateCheck, Measurement, Metrics } from './metrics.js';

/** Answers every measurement as unreachable, saying why. */
export class NoMetrics implements Metrics {
  /**
   * @param name how reasons name the missing source (`Prometheus unreachable: …`)
   * @param why every answer's message: the section deploy.yaml lacks
   * @param unreachableHint how to add it
   */
  constructor(
    readonly name: string,
    private readonly why: string,
    readonly unreachableHint: string,
  ) {}

  private async none(): Promise<Measurement<never> & GateCheck> {
    return { kind: 'unreachable', message: this.why, query: '', sent: [] };
  }

  requestCounts = () => this.none();
  requestCountsByOrg = () => this.none();
  latencyP99 = () => this.none();
  latencyRequests = () => this.none();
  fastRequests = () => this.none();
  queryValue = () => this.none();
  replayRequestCounts = () => this.none();
  replayLatency = () => this.none();
  replayQueryValues = () => this.none();
  check = () => this.none();
}
