// Peer: the minimal ws fan-out most tutorials show. One socket.send() per
// message per subscriber; the JSON is stringified once per publication.
import http from 'node:http';
import { WebSocketServer } from 'ws';

const port = Number(process.env.PORT ?? 9001);
const topics = new Map();
const server = http.createServer((request, response) => {
  // POST /publish {"topic","message"}: the HTTP publish path.
  let body = '';
  request.on('data', (chunk) => (body += chunk));
  request.on('end', () => {
    const { topic, message } = JSON.parse(body);
    publish(topic, message);
    response.end('{"ok":true}');
  });
});
const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false });

function publish(topic, message) {
  const text = JSON.stringify({ action: 'publish', topic, message });
  for (const ws of topics.get(topic) ?? []) ws.send(text);
}

wss.on('connection', (ws) => {
  const mine = new Set();
  ws.on('message', (data) => {
    const command = JSON.parse(data);
    if (command.action === 'subscribe') {
      if (!topics.has(command.topic)) topics.set(command.topic, new Set());
      topics.get(command.topic).add(ws);
      mine.add(command.topic);
      ws.send(JSON.stringify({ id: command.id, action: 'subscribe', ok: true }));
    } else if (command.action === 'publish') {
      publish(command.topic, command.message);
    }
  });
  ws.on('close', () => {
    for (const topic of mine) topics.get(topic)?.delete(ws);
  });
});
server.listen(port, '127.0.0.1', () => process.send?.('ready'));
