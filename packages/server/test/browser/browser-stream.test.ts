import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import type { Herald } from '../../src/index.js';
import { NPM_START_CONFIG, openAs, shot, useBrowser } from '../helpers/browser.js';
import { startHerald } from '../helpers/helpers.js';

/** What the demo page shows of its answer, and what it counted. */
interface Shown {
  text: string;
  state: string;
  seq: number;
  duplicates: number;
  gaps: number;
  resumedAfter: string;
}

function shown(page: Page): Promise<Shown> {
  return page.$eval('#answer', (element: any) => {
    const data = element.dataset;
    return { text: element.textContent ?? '', state: data.state, seq: Number(data.seq), duplicates: Number(data.duplicates), gaps: Number(data.gaps), resumedAfter: data.resumedAfter ?? '' };
  });
}

/** What the backend published to the answer's topic: every message, the text of its chunks joined, and its end. */
async function published(herald: Herald, topic: string): Promise<{ text: string; chunks: number; offsets: Map<number, number> }> {
  const page = await herald.historyOf(topic);
  const messages = page.publications.map((p) => p.message as { seq: number; text?: string; end?: string });
  assert.deepEqual(
    messages.map((m) => m.seq),
    messages.map((_m, i) => i + 1),
    'the backend published seq 1, 2, 3, ... with nothing missing',
  );
  const last = messages.at(-1)!;
  assert.equal(last.end, 'done', 'the answer ended');
  return {
    text: messages.map((m) => m.text ?? '').join(''),
    chunks: messages.length - 1,
    offsets: new Map(page.publications.map((p, i) => [i + 1, p.offset])),
  };
}

describe('the resumable-stream demo in headless Chromium', () => {
  const chromium = useBrowser();
  let herald: Herald;
  before(async () => {
    herald = await startHerald({ ...NPM_START_CONFIG });
  });
  after(() => herald.close());

  /** What a reloaded page asked Herald for: the SSE URLs it opened and the subscribe commands it sent on a WebSocket. */
  interface Asked {
    sse: URL[];
    subscribes: Array<Record<string, any>>;
  }

  /**
   * Asks for an answer, reloads the page (a real reload) once `reloadAt`
   * tokens are shown, waits for the end, and checks the text against what
   * the backend published. Returns the page, the answer's topic, the token
   * the page resumed after, what it published, and what the page asked for
   * after the reload.
   */
  async function askAndReload(path: string, reloadAt: number) {
    const page = await openAs(chromium.browser()!, herald, path);
    await page.fill('#prompt', 'What happens when I reload this page half way?');
    await page.click('#send');
    await page.waitForFunction(`Number(document.querySelector('#answer').dataset.seq) >= ${reloadAt}`, undefined, { timeout: 20_000 });
    const answer = new URL(page.url()).searchParams.get('answer');
    assert.match(answer ?? '', /^[A-Za-z0-9_-]{22}$/, 'the page keeps the answer in its URL');
    const topic = `answer:${answer}`;
    const before = await shown(page);
    assert.equal(before.state, 'streaming', 'reloaded while the answer is still streaming');

    const asked: Asked = { sse: [], subscribes: [] };
    page.on('request', (request) => {
      if (request.url().includes('/sse?')) asked.sse.push(new URL(request.url()));
    });
    page.on('websocket', (socket) =>
      socket.on('framesent', ({ payload }) => {
        const frame = JSON.parse(String(payload)) as Record<string, any>;
        if (frame.action === 'subscribe') asked.subscribes.push(frame);
      }),
    );
    await page.reload();
    const after = await shown(page);
    const resumedAfter = Number(after.resumedAfter);
    assert.ok(resumedAfter >= before.seq, `the reloaded page resumes after what it had shown (token ${resumedAfter}, at least ${before.seq})`);
    assert.ok(after.text.length > 0 && after.state !== 'done', 'it shows the saved text at once and goes on');

    await page.waitForSelector('#answer[data-state="done"]', { timeout: 60_000 });
    const expected = await published(herald, topic);
    assert.ok(resumedAfter < expected.chunks, `the reload came half way (after token ${resumedAfter} of ${expected.chunks})`);
    const done = await shown(page);
    assert.equal(done.text, expected.text, 'the text is exactly what the backend published: nothing repeated, nothing missing');
    assert.deepEqual([done.duplicates, done.gaps, done.seq], [0, 0, expected.chunks + 1], 'Herald sent no token twice and skipped none');
    const since = { offset: expected.offsets.get(resumedAfter)!, epoch: (await herald.historyOf(topic)).epoch };
    return { page, topic, since, expected, asked };
  }

  it('bare EventSource: reloaded half way, the text goes on at the exact token; a second tab reads the whole answer', async (t) => {
    if (!chromium.browser()) return t.skip(chromium.skipped());
    const { page, topic, since, expected, asked } = await askAndReload('/stream.html', 40);
    assert.equal(asked.sse.length, 1, `one stream since the reload: ${asked.sse.join(', ')}`);
    assert.equal(asked.sse[0]!.searchParams.get('topic'), topic);
    assert.equal(asked.sse[0]!.searchParams.get('lastEventId'), `${since.offset}.${since.epoch}`, 'the reloaded page asked for what came after the last token it showed');
    await shot(page, 'stream');

    // Another tab, with nothing saved, reads the same answer from its start.
    const second = await openAs(chromium.browser()!, herald, `/stream.html?answer=${topic.slice('answer:'.length)}`);
    await second.waitForSelector('#answer[data-state="done"]', { timeout: 10_000 });
    const all = await shown(second);
    assert.equal(all.text, expected.text);
    assert.equal(all.resumedAfter, '', 'nothing saved in that tab: it read from the start');
    await Promise.all([page.context().close(), second.context().close()]);
  });

  it('SDK over WebSocket: reloaded half way, it subscribes with since the last token shown, and the text is complete with no repeat', async (t) => {
    if (!chromium.browser()) return t.skip(chromium.skipped());
    const { page, topic, since, asked } = await askAndReload('/stream.html?reader=sdk', 40);
    assert.equal(await page.$eval('#answer', (element: any) => element.dataset.reader), 'sdk');
    assert.deepEqual(
      asked.subscribes.map((frame) => [frame.topic, frame.since]),
      [[topic, since]],
      'one subscribe since the reload, from the last token the page showed',
    );
    await page.context().close();
  });

  it('Stop ends the answer with an error that every reader sees, and the tab keeps it across a reload', async (t) => {
    if (!chromium.browser()) return t.skip(chromium.skipped());
    const page = await openAs(chromium.browser()!, herald, '/stream.html');
    await page.click('#send');
    await page.waitForFunction("Number(document.querySelector('#answer').dataset.seq) >= 5", undefined, { timeout: 20_000 });
    const answer = new URL(page.url()).searchParams.get('answer')!;
    await page.click('#stop');
    await page.waitForSelector('#answer[data-state="error"]');
    assert.equal(await page.textContent('#ended'), 'error: stopped by the reader');
    const messages = (await herald.historyOf(`answer:${answer}`)).publications.map((p) => p.message as { seq: number; end?: string; reason?: string });
    assert.deepEqual(messages.at(-1), { seq: messages.length, end: 'error', reason: 'stopped by the reader' });
    // Reloaded, the tab shows what it saved, the end included, and opens no stream.
    const text = await page.textContent('#answer');
    await page.reload();
    await page.waitForSelector('#answer[data-state="error"]');
    assert.equal(await page.textContent('#answer'), text);
    await page.context().close();
  });
});
