'use strict';
// What both peer servers share: the --port argument and the topic name rule of
// PEER_PROTOCOL.md.

function portArg(argv) {
  const i = argv.indexOf('--port');
  if (i < 0 || i + 1 >= argv.length) return 0;
  const port = Number(argv[i + 1]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`bad --port ${argv[i + 1]}`);
    process.exit(2);
  }
  return port;
}

const kMaxTopicBytes = 200;

function validTopic(t) {
  return typeof t === 'string' && t.length > 0 && Buffer.byteLength(t) <= kMaxTopicBytes;
}

module.exports = { portArg, validTopic };
