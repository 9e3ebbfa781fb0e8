import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

// The dashboard's rate arithmetic (demo/rate.js), a browser module without DOM use.
const { rateOver, niceScale } = (await import(new URL('../../../../../demo/rate.js', import.meta.url).href)) as {
  rateOver: (samples: Array<{ at: number; value: number }>, windowMs: number) => number | null;
  niceScale: (max: number, count?: number, integer?: boolean) => { step: number; top: number };
};

describe('dashboard rates', () => {
  // A counter growing by 3 a second in steps (one message every 1/3 s), read
  // about once a second with the jitter of a busy page: 0.8 s to 1.25 s apart.
  const jitter = [0, 250, -200, 120, -150, 230, -60, 180, -220, 40, 210, -180, 90, -120, 0];
  const reads = jitter.map((offset, i) => i * 1000 + offset);
  const counter = (at: number): number => Math.floor((at / 1000) * 3);

  it('a steady 3 a second reads as about 3 a second, sample after sample (no sawtooth)', () => {
    const samples: Array<{ at: number; value: number }> = [];
    const windowed: number[] = [];
    const naive: number[] = [];
    for (const at of reads) {
      samples.push({ at, value: counter(at) });
      if (samples.length < 2) continue;
      const [a, b] = [samples[samples.length - 2]!, samples[samples.length - 1]!];
      naive.push((b.value - a.value) / ((b.at - a.at) / 1000));
      if (at >= 5000) windowed.push(rateOver(samples, 5000)!);
    }
    // Sample to sample, the rate jumps about (the sawtooth the page used to draw)...
    assert.ok(Math.max(...naive) - Math.min(...naive) > 1, `naive rates ${naive.map((r) => r.toFixed(2)).join(' ')}`);
    // ...over a 5 s window of real elapsed time it stays within a step of the truth.
    for (const rate of windowed) assert.ok(Math.abs(rate - 3) < 0.35, `windowed rate ${rate}`);
  });

  it('uses the real time between samples, not the number of samples', () => {
    const samples = [{ at: 0, value: 0 }, { at: 500, value: 50 }, { at: 2500, value: 250 }];
    assert.equal(rateOver(samples, 5000), 100);
    assert.equal(rateOver(samples, 1000), 100);
  });

  it('a counter that went down (a restarted server) counts from zero; one sample has no rate', () => {
    assert.equal(rateOver([{ at: 0, value: 900 }, { at: 1000, value: 1000 }, { at: 2000, value: 40 }], 5000), 70);
    assert.equal(rateOver([{ at: 0, value: 5 }], 5000), null);
    assert.equal(rateOver([], 5000), null);
  });

  it('axis scales are round numbers from 0 above the largest value', () => {
    assert.deepEqual(niceScale(0, 4, true), { step: 1, top: 1 });
    assert.deepEqual(niceScale(3, 4, true), { step: 1, top: 3 });
    assert.deepEqual(niceScale(37, 4, true), { step: 10, top: 40 });
    assert.deepEqual(niceScale(0.4), { step: 0.5, top: 0.5 });
    assert.deepEqual(niceScale(1234), { step: 500, top: 1500 });
  });
});
