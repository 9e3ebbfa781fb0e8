import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));

/**
 * The benchmark's filter cases run, small (--quick, 1,000 subscribers):
 * every publication arrives where it should, and the comparison with
 * unfiltered delivery is printed. No figure is asserted: speed is the full
 * run's to measure (docs/benchmarks.md), on a quiet machine.
 */
describe('bench smoke: filters beside unfiltered delivery', () => {
  it('fanout-1k, filter-1k-control and filter-1k run with nothing lost, and the comparison is printed', async () => {
    const results = join(mkdtempSync(join(tmpdir(), 'herald-bench-')), 'results.json');
    const child = spawn('node', [join(ROOT, 'bench/run.mjs'), '--quick', '--only=herald', '--cases=fanout-1k,filter-1k-control,filter-1k', `--results=${results}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, `bench/run.mjs exited with ${code}:\n${err}`);
    const saved = JSON.parse(readFileSync(results, 'utf8')) as { results: { herald: Record<string, { published: number; deliveries: number; expected: number; lost: number; publishingCpuSeconds: number }> } };
    const herald = saved.results.herald;
    for (const name of ['fanout-1k', 'filter-1k-control', 'filter-1k']) {
      const r = herald[name];
      assert.ok(r, `${name} ran`);
      assert.equal(r.lost, 0, `${name}: nothing lost`);
      assert.ok(r.deliveries > 0 && r.deliveries === r.expected, `${name}: ${r.deliveries} of ${r.expected}`);
      assert.equal(typeof r.publishingCpuSeconds, 'number', `${name}: the server's CPU over the publishing`);
    }
    // Each filtered subscriber got a tenth of the publications: a tenth of the subscribers per publication.
    assert.equal(herald['filter-1k']!.deliveries, (herald['filter-1k']!.published * 1000) / 10);
    assert.match(out, /filter-1k: [\d,]+ deliveries\/s, [\d.,]+ µs server CPU per delivery/);
    assert.match(out, /filter-1k ÷ fanout-1k: [\d.,]+× deliveries\/s, [\d.,]+× server CPU per delivery/);
    assert.match(out, /a filter that leaves a subscriber out: -?[\d.,]+ µs of server CPU, against [\d.,]+ µs for the write it saves/);
  });
});
