'use strict';
// Peer server for wsfleet-bench: socket.io 4.x with the events of PEER_PROTOCOL.md
// (`sub` joins a room, `pub` emits `msg` to the room). WebSocket transport only.
//
// Usage: node socketio-server.js [--port P]   (prints "listening <port>" once ready)

const http = require('http');
const { Server } = require('socket.io');
const { portArg, validTopic } = require('./args');

const srv = http.createServer();
const io = new Server(srv, { transports: ['websocket'], perMessageDeflate: false });

io.on('connection', (socket) => {
  socket.on('sub', (topic) => {
    if (!validTopic(topic)) return;
    socket.join(topic);
    socket.emit('suback', topic);
  });
  socket.on('unsub', (topic) => {
    if (validTopic(topic)) socket.leave(topic);
  });
  socket.on('pub', (topic, data) => {
    // io.to(room).emit encodes the packet once and writes it to every member.
    if (validTopic(topic) && typeof data === 'string') io.to(topic).emit('msg', data);
  });
});

srv.on('error', (err) => {
  console.error(`socketio-server: ${err.message}`);
  process.exit(1);
});
srv.listen(portArg(process.argv), '127.0.0.1', () => {
  process.stdout.write(`listening ${srv.address().port}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
