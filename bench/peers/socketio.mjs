// Peer: Socket.IO 4 with rooms, WebSocket transport only.
import http from 'node:http';
import { Server } from 'socket.io';

const port = Number(process.env.PORT ?? 9003);
const server = http.createServer((request, response) => {
  if (request.url !== '/publish') return;
  let body = '';
  request.on('data', (chunk) => (body += chunk));
  request.on('end', () => {
    const { topic, message } = JSON.parse(body);
    io.to(topic).emit('publish', message);
    response.end('{"ok":true}');
  });
});
const io = new Server(server, { transports: ['websocket'], perMessageDeflate: false, serveClient: false, maxHttpBufferSize: 1e6 });
io.on('connection', (socket) => {
  socket.on('subscribe', (topic) => {
    socket.join(topic);
    socket.emit('subscribed', topic);
  });
  socket.on('publish', ({ topic, message }) => io.to(topic).emit('publish', message));
});
server.listen(port, '127.0.0.1', () => process.send?.('ready'));
