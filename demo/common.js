// What every demo page shares: the WebSocket URL, the SDK served by Herald,
// a connection badge, and the demo backend's token minting.
import { HeraldClient } from '/client.js';

export const $ = (id) => document.getElementById(id);
export const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;

/** Shows the client's state in a `.state` badge. */
export function showState(client, element) {
  const render = (state, text) => {
    element.className = `state ${state}`;
    element.textContent = text ?? state;
  };
  client.on('state', ({ to }) => render(to === 'closed' ? 'disconnected' : to, to === 'connecting' ? 'connecting…' : to));
  client.on('disconnected', ({ delay }) => render('disconnected', `reconnecting in ${(delay / 1000).toFixed(1)} s`));
  render(client.state);
}

/** Asks the demo backend (the stand-in for your application's server) for a token. */
export async function demoToken(uid, name) {
  const response = await fetch('/demo/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ uid, ...(name ? { name } : {}) }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error?.message ?? `token request failed (${response.status})`);
  return body.token;
}

/** POSTs JSON to a demo backend route; resolves with the body, rejects with the server's message. */
export async function demoCall(path, payload = {}) {
  const response = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error?.message ?? `${path} failed (${response.status})`);
  return body;
}

/** A short random id for this tab. */
export function tabId() {
  let id = sessionStorage.getItem('herald-demo-tab');
  if (!id) {
    id = Math.random().toString(36).slice(2, 8);
    sessionStorage.setItem('herald-demo-tab', id);
  }
  return id;
}

export function client(options = {}) {
  return new HeraldClient({ url: wsUrl, ...options });
}
