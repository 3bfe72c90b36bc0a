/**
 * A P99 taken from a histogram is an interpolation inside one bucket: the bucket histogram_quantile
 * interpolates in, beside its estimate.
 */
import { describe, expect, it } from 'vitest';
import { histogramQuantile, quantileBucket, type Buckets } from '../../src/metrics/prometheus/histogram.js';

/** 1,000 requests: 900 within 1 ms, 995 within 5 ms: the P99 (rank 990) lies near the top of (2.5 ms, 5 ms]. */
const TOP_OF_BUCKET: Buckets = [[0.001, 900], [0.0025, 900], [0.005, 995], [0.01, 1000], [Infinity, 1000]];

describe('the bucket of a histogram quantile', () => {
  it('is the bucket histogram_quantile interpolates in, the estimate inside it', () => {
    expect(quantileBucket(0.99, TOP_OF_BUCKET)).toEqual({ lower: 0.0025, upper: 0.005 });
    expect(histogramQuantile(0.99, TOP_OF_BUCKET)).toBeCloseTo(0.0025 + 0.0025 * (90 / 95), 12);
  });

  it('is the first bucket from 0, and Infinity above the highest bound where the estimate is that bound', () => {
    const fast: Buckets = [[0.005, 1000], [0.01, 1000], [Infinity, 1000]];
    expect(quantileBucket(0.99, fast)).toEqual({ lower: 0, upper: 0.005 });
    const slow: Buckets = [[0.005, 900], [0.01, 980], [Infinity, 1000]];
    expect(quantileBucket(0.99, slow)).toEqual({ lower: 0.01, upper: Infinity });
    expect(histogramQuantile(0.99, slow)).toBe(0.01);
  });

  it('reads buckets as Prometheus does: in any order, one bound written twice as one, counts never falling', () => {
    const shuffled: Buckets = [[Infinity, 1000], [0.005, 995], [0.001, 900], [0.0025, 900], [0.01, 1000]];
    expect(quantileBucket(0.99, shuffled)).toEqual({ lower: 0.0025, upper: 0.005 });
    const twice: Buckets = [[0.5, 400], [0.5, 590], [1, 1000], [Infinity, 1000]];
    expect(quantileBucket(0.5, twice)).toEqual({ lower: 0, upper: 0.5 });
    // A rate over a scrape gap can dip below the bucket before it; Prometheus raises it to that.
    const dipped: Buckets = [[0.1, 985], [0.25, 980], [0.5, 1000], [Infinity, 1000]];
    expect(quantileBucket(0.99, dipped)).toEqual({ lower: 0.25, upper: 0.5 });
    expect(histogramQuantile(0.99, dipped)).toBeCloseTo(0.25 + 0.25 * (5 / 15), 12);
  });

  it('is none when nothing was counted or the histogram has no +Inf bucket', () => {
    expect(quantileBucket(0.99, [[0.005, 0], [Infinity, 0]])).toBeUndefined();
    expect(quantileBucket(0.99, [[0.005, 10], [0.01, 20]])).toBeUndefined();
    expect(histogramQuantile(0.99, [[0.005, 0], [Infinity, 0]])).toBeNaN();
  });
});
