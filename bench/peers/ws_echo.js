// Benchmark peer: a WebSocket echo server on Node's `ws` (Debian node-ws; run with
// NODE_PATH=/usr/share/nodejs). node ws_echo.js PORT: listens on 127.0.0.1:PORT, accepts any
// path, echoes every message with its type; 16 MiB max message, no compression.
'use strict';
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2]);
if (!port) {
  console.error('usage: node ws_echo.js PORT');
  process.exit(2);
}
const server = new WebSocketServer({
  host: '127.0.0.1',
  port,
  backlog: 65535,
  maxPayload: 16 * 1024 * 1024,
  perMessageDeflate: false,
  clientTracking: false,
});
server.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  socket.on('error', () => {});
});
