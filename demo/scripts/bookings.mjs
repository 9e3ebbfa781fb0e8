#!/usr/bin/env node
// A backend that publishes one booking a second to the `bookings` topic
// through Herald's HTTP API. Usage: node demo/scripts/bookings.mjs [http://localhost:8080] [count]
// Set HERALD_API_KEY when the server has API keys.
const base = process.argv[2] ?? 'http://localhost:8080';
const count = Number(process.argv[3] ?? 30);
const shows = ['Hamlet', 'Carmen', 'Swan Lake', 'Cats', 'Tosca'];
const names = ['Ada', 'Grace', 'Linus', 'Ken', 'Barbara'];
const headers = { 'content-type': 'application/json', ...(process.env.HERALD_API_KEY ? { authorization: `Bearer ${process.env.HERALD_API_KEY}` } : {}) };

for (let i = 0; i < count; i++) {
  const seats = 1 + (i % 4);
  const message = { id: Date.now(), show: shows[i % shows.length], customer: names[i % names.length], seats, amount: seats * 45, time: new Date().toISOString() };
  const response = await fetch(`${base}/api/publish`, { method: 'POST', headers, body: JSON.stringify({ topic: 'bookings', message }) });
  console.log(response.status, JSON.stringify(message));
  if (!response.ok) process.exit(1);
  await new Promise((resolve) => setTimeout(resolve, 1000));
}
