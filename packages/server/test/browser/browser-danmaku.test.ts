import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import type { Herald } from '../../src/index.js';
import { NPM_START_CONFIG, openAs, shot, useBrowser } from '../helpers/browser.js';
import { startHerald } from '../helpers/helpers.js';

describe('danmaku demo in headless Chromium', () => {
  const chromium = useBrowser();
  let herald: Herald;
  before(async () => {
    herald = await startHerald({ ...NPM_START_CONFIG });
  });
  after(() => herald.close());

  const open = (path: string): Promise<Page> => openAs(chromium.browser()!, herald, path);

  it('danmaku: a comment typed in one window flies across the other, and under the stress button no two comments ever overlap', async (t) => {
    if (!chromium.browser()) return t.skip(chromium.skipped());
    const viewer = await open('/danmaku.html?room=test');
    const sender = await open('/danmaku.html?room=test');
    await viewer.waitForSelector('.state.connected');
    await sender.waitForSelector('.state.connected');
    await sender.fill('#comment', 'what a goal');
    await sender.press('#comment', 'Enter');
    await viewer.waitForSelector('#stage .comment >> text=what a goal');
    await viewer.waitForSelector('#recent li >> text=what a goal');
    await shot(viewer, 'danmaku');

    await sender.click('#stress');
    // Lanes: no two comments on stage overlap, checked again and again while 200 a second arrive.
    // What a viewer sees: each comment's box clipped to the stage's padding box, where its
    // overflow: hidden cuts (a comment off stage, e.g. finished and not yet removed, is not drawn).
    const overlaps = (): Promise<string[]> =>
      viewer.$eval('#stage', (stage) => {
        const border = stage.getBoundingClientRect();
        const left = border.left + stage.clientLeft;
        const area = { left, right: left + stage.clientWidth, top: border.top + stage.clientTop };
        const items = [...stage.querySelectorAll('.comment')];
        const boxes = items.map((item) => {
          const box = item.getBoundingClientRect();
          return { left: Math.max(box.left, area.left), right: Math.min(box.right, area.right), top: box.top, bottom: box.bottom };
        });
        const found: string[] = [];
        for (let i = 0; i < boxes.length; i++) {
          for (let j = i + 1; j < boxes.length; j++) {
            const [a, b] = [boxes[i]!, boxes[j]!];
            if (a.left >= a.right || b.left >= b.right) continue;
            if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) {
              found.push(`${items[i]!.textContent} [${a.left - area.left}, ${a.right - area.left}] / ${items[j]!.textContent} [${b.left - area.left}, ${b.right - area.left}] at top ${a.top - area.top}, ${b.top - area.top}`);
            }
          }
        }
        return found;
      });
    let checks = 0;
    while (Number(await viewer.textContent('#received')) < 1001) {
      assert.deepEqual(await overlaps(), [], 'comments overlap');
      checks++;
      await viewer.evaluate('new Promise((resolve) => requestAnimationFrame(resolve))');
    }
    assert.ok(checks > 5, `the stage was checked ${checks} times during the stress`);
    assert.deepEqual(await overlaps(), []);
    // 200 a second for 5 seconds: every one reaches the other window, none is refused.
    await sender.waitForFunction("Number(document.getElementById('sent').textContent) === 1001");
    assert.equal(await sender.textContent('#refused'), '0');
    await Promise.all([viewer.context().close(), sender.context().close()]);
  });

});
