// Peer: a minimal ws fan-out done well. Each publication is framed once (a
// single Buffer holding the WebSocket frame), appended to each subscriber's
// pending list, and every subscriber gets one write per event-loop turn.
import http from 'node:http';
import { WebSocketServer } from 'ws';

const port = Number(process.env.PORT ?? 9002);
const topics = new Map();
const dirty = new Set();
let scheduled = false;

function frame(text) {
  const payload = Buffer.from(text);
  const length = payload.length;
  const header = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(header + length);
  out[0] = 0x81;
  if (header === 2) out[1] = length;
  else if (header === 4) {
    out[1] = 126;
    out.writeUInt16BE(length, 2);
  } else {
    out[1] = 127;
    out.writeBigUInt64BE(BigInt(length), 2);
  }
  payload.copy(out, header);
  return out;
}

function flush() {
  scheduled = false;
  for (const client of dirty) {
    const { pending } = client;
    client.pending = [];
    if (pending.length === 1) client.socket.write(pending[0]);
    else client.socket.write(Buffer.concat(pending));
  }
  dirty.clear();
}

function publish(topic, message) {
  const subscribers = topics.get(topic);
  if (!subscribers) return;
  const bytes = frame(JSON.stringify({ action: 'publish', topic, message }));
  for (const client of subscribers) {
    client.pending.push(bytes);
    dirty.add(client);
  }
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
}

const server = http.createServer((request, response) => {
  let body = '';
  request.on('data', (chunk) => (body += chunk));
  request.on('end', () => {
    const { topic, message } = JSON.parse(body);
    publish(topic, message);
    response.end('{"ok":true}');
  });
});
const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false });
wss.on('connection', (ws, request) => {
  const client = { ws, socket: request.socket, pending: [], topics: new Set() };
  ws.on('message', (data) => {
    const command = JSON.parse(data);
    if (command.action === 'subscribe') {
      if (!topics.has(command.topic)) topics.set(command.topic, new Set());
      topics.get(command.topic).add(client);
      client.topics.add(command.topic);
      ws.send(JSON.stringify({ id: command.id, action: 'subscribe', ok: true }));
    } else if (command.action === 'publish') {
      publish(command.topic, command.message);
    }
  });
  ws.on('close', () => {
    dirty.delete(client);
    for (const topic of client.topics) topics.get(topic)?.delete(client);
  });
});
server.listen(port, '127.0.0.1', () => process.send?.('ready'));
