// Task progress (seed 004): the page logs in as a user; the backend pushes the
// progress of a long task to that uid, to every connection the user has.
import { $, backedClient, demoCall, tabId } from '/common.js';

const uid = new URLSearchParams(location.search).get('uid') || localStorage.getItem('herald-task-uid') || `user-${tabId()}`;
localStorage.setItem('herald-task-uid', uid);
$('uid').textContent = uid;
$('curl').textContent = `curl -X POST ${location.origin}/api/send \\
  -H 'content-type: application/json' \\
  -d '{"uid":"${uid}","message":{"task":"from-curl","progress":75,"status":"running"}}'`;

const bars = new Map();

function bar(task) {
  let entry = bars.get(task);
  if (entry) return entry;
  $('no-tasks')?.remove();
  const item = document.createElement('li');
  item.className = 'task';
  item.dataset.task = task;
  item.innerHTML = '<div class="label"><span class="name"></span><span class="status"></span></div><div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100"><div></div></div>';
  item.querySelector('.name').textContent = task;
  $('tasks').prepend(item);
  entry = { item, fill: item.querySelector('.bar > div'), bar: item.querySelector('.bar'), status: item.querySelector('.status') };
  bars.set(task, entry);
  return entry;
}

const client = backedClient({
  uid: () => uid,
  badge: $('state'),
  onRefused: (error) => {
    $('start-result').textContent = error.message;
    $('start-result').className = 'notice bad';
  },
});
client.on('connected', () => ($('start').disabled = false));
client.on('disconnected', () => ($('start').disabled = true));
client.on('error', ({ error, context }) => {
  if (context === 'login') $('start-result').textContent = `login: ${error.message}`;
});
client.on('push', ({ message }) => {
  if (!message || typeof message !== 'object' || message.task === undefined) return;
  const progress = Math.max(0, Math.min(100, Number(message.progress) || 0));
  const entry = bar(String(message.task));
  entry.fill.style.width = `${progress}%`;
  entry.bar.setAttribute('aria-valuenow', String(progress));
  entry.status.textContent = message.status === 'done' || progress >= 100 ? 'done · 100 %' : `${progress} %`;
  entry.item.classList.toggle('done', message.status === 'done' || progress >= 100);
});
client.connect();

$('start').addEventListener('click', async () => {
  $('start-result').textContent = '';
  try {
    const { task } = await demoCall('/demo/task', { uid });
    bar(task);
    $('start-result').textContent = `${task} started`;
  } catch (err) {
    $('start-result').textContent = err.message;
  }
});
