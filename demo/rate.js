// Rates from counters, for the dashboard: a counter's samples (its value and
// the time it was read) give its rate per second over a sliding window of
// real elapsed time, so that neither the polling jitter nor bursty traffic
// makes a sawtooth of it (the way Prometheus' rate() reads a counter).

/**
 * The rate per second of a counter over the last `windowMs` of `samples`
 * (`{ at, value }`, `at` in ms, oldest first): the increase from the oldest
 * sample in the window to the newest, over the time between them. A counter
 * that went down (a restarted server) counts from zero. Null with fewer than
 * two samples.
 */
export function rateOver(samples, windowMs) {
  if (samples.length < 2) return null;
  const last = samples[samples.length - 1];
  let first = samples.length - 2;
  while (first > 0 && last.at - samples[first - 1].at <= windowMs) first--;
  let increase = 0;
  for (let i = first + 1; i < samples.length; i++) {
    const delta = samples[i].value - samples[i - 1].value;
    increase += delta >= 0 ? delta : samples[i].value;
  }
  const seconds = (last.at - samples[first].at) / 1000;
  return seconds > 0 ? increase / seconds : null;
}

/** A round step for about `count` ticks from 0 to `max` (at least 1), and the top of the axis (a multiple of the step). */
export function niceScale(max, count = 4, integer = false) {
  const raw = Math.max(max, 1) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  let step = (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
  if (integer) step = Math.max(1, Math.round(step));
  return { step, top: Math.max(step, Math.ceil(max / step) * step) };
}
