#!/usr/bin/env node
// A backend running a long task for a user and pushing its progress through
// Herald's HTTP API. Usage: node demo/scripts/task.mjs <uid> [http://localhost:8080]
// Set HERALD_API_KEY when the server has API keys.
const uid = process.argv[2];
if (!uid) {
  console.error('usage: node demo/scripts/task.mjs <uid> [http://localhost:8080]');
  process.exit(2);
}
const base = process.argv[3] ?? 'http://localhost:8080';
const headers = { 'content-type': 'application/json', ...(process.env.HERALD_API_KEY ? { authorization: `Bearer ${process.env.HERALD_API_KEY}` } : {}) };
const task = `script-${process.pid}`;
for (let progress = 0; progress <= 100; progress += 10) {
  const message = { task, progress, status: progress === 100 ? 'done' : 'running' };
  const response = await fetch(`${base}/api/send`, { method: 'POST', headers, body: JSON.stringify({ uid, message }) });
  console.log(response.status, await response.text());
  if (!response.ok) process.exit(1);
  await new Promise((resolve) => setTimeout(resolve, 300));
}
