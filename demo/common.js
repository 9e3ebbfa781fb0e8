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

/** What a page says when the demo backend is off on this server. */
export const BACKEND_OFF = 'This page needs the demo backend (it mints the tokens and runs the feeds), which is off on this server. Start Herald with npm start, which turns it on (demo.backend in demo/herald.yaml).';

/**
 * The demo backend answered with an error: it is off (404), refuses this
 * caller (not on this machine) or this request. Asking again will not help,
 * unlike a network error, which is thrown as fetch throws it.
 */
export class BackendError extends Error {
  constructor(message, status) {
    super(message);
    this.name = 'BackendError';
    this.status = status;
  }
}

/** Calls a demo backend route with JSON (POST, or GET without payload); resolves with the body. */
export async function demoCall(path, payload) {
  const init = payload === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) };
  const response = await fetch(path, init);
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: the status says enough
  }
  if (response.status === 404 && body?.error?.code === 'not_found' && body.error.message.startsWith('no route')) throw new BackendError(BACKEND_OFF, 404);
  if (!response.ok) throw new BackendError(body?.error?.message ?? `${path} failed (${response.status})`, response.status);
  return body;
}

/** Asks the demo backend (the stand-in for your application's server) for a token. */
export async function demoToken(uid, name) {
  const body = await demoCall('/demo/token', { uid, ...(name ? { name } : {}) });
  return body.token;
}

/**
 * A client that logs in with a token from the demo backend. When the backend
 * refuses (off on this server, or this caller is not on its machine), the
 * client stops instead of retrying, the badge says so, and `onRefused(error)`
 * runs once.
 */
export function backedClient({ uid, name = () => undefined, badge, onRefused }) {
  const heraldClient = client({ getToken: () => demoToken(uid(), name()) });
  showState(heraldClient, badge);
  heraldClient.on('error', ({ error, context }) => {
    if (context !== 'getToken' || !(error instanceof BackendError)) return;
    heraldClient.close(1000, 'no demo backend');
    badge.className = 'state disconnected';
    badge.textContent = error.status === 404 ? 'no demo backend' : 'refused';
    onRefused(error);
  });
  return heraldClient;
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
