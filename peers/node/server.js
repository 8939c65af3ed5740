'use strict';
/*
 * A grpc.testing.TestService server on grpc-js, started by the grpc_lite tests
 * (tests/peers/node.py) on 127.0.0.1.  It implements the server side of grpc/grpc
 * doc/interop-test-descriptions.md ("Server" section) as far as grpc-js allows:
 *
 *   EmptyCall, UnaryCall, CacheableUnaryCall, StreamingOutputCall,
 *   StreamingInputCall, FullDuplexCall, HalfDuplexCall; Echo Status, Echo Metadata,
 *   ResponseParameters.interval_us.  UnimplementedCall and UnimplementedService are
 *   deliberately not registered, so grpc-js answers UNIMPLEMENTED for them.
 *
 * Not possible with grpc-js 1.14 (see tests/peers/node.py UNSUPPORTED):
 *   - CompressedRequest (expect_compressed): grpc-js decompresses gzip/deflate requests
 *     before the handler runs and strips grpc-encoding from the metadata the handler
 *     sees; whether a message was compressed is not exposed, so the handler cannot fail
 *     an uncompressed "expect_compressed" request with INVALID_ARGUMENT.  The field is
 *     ignored (compressed requests are still accepted and decompressed).
 *   - CompressedResponse (response_compressed, ResponseParameters.compressed): the
 *     grpc-js server never compresses a message (the flag byte is always 0 and the
 *     response headers always say grpc-encoding: identity).  The fields are ignored.
 *
 * Flags: --port N (0: any free port), --use_tls[=true|false], --tls_cert_file PATH,
 * --tls_key_file PATH.  Prints "LISTENING <port>" once bound; exits on SIGTERM/SIGINT.
 */

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'proto');
const ECHO_INITIAL_KEY = 'x-grpc-test-echo-initial';
const ECHO_TRAILING_KEY = 'x-grpc-test-echo-trailing-bin';
// very_large_request (grpc-java) sends a 10 MiB payload; allow well beyond that both ways.
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

function parseArgs(argv) {
  const args = {
    port: 0,
    use_tls: false,
    tls_cert_file: null,
    tls_key_file: null,
  };
  const booleans = new Set(['use_tls']);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      throw new Error(`unexpected argument ${JSON.stringify(arg)}`);
    }
    let name = arg.slice(2);
    let value = null;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    if (!(name in args)) {
      throw new Error(`unknown flag --${name}`);
    }
    if (booleans.has(name)) {
      if (value === null && (argv[i + 1] === 'true' || argv[i + 1] === 'false')) {
        value = argv[++i];
      }
      if (value !== null && value !== 'true' && value !== 'false') {
        throw new Error(`--${name} takes true or false, not ${JSON.stringify(value)}`);
      }
      args[name] = value === null || value === 'true';
      continue;
    }
    if (value === null) {
      if (i + 1 >= argv.length) {
        throw new Error(`--${name} needs a value`);
      }
      value = argv[++i];
    }
    args[name] = value;
  }
  const port = Number(args.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`bad --port ${JSON.stringify(args.port)}`);
  }
  args.port = port;
  if (args.use_tls && (!args.tls_cert_file || !args.tls_key_file)) {
    throw new Error('--use_tls needs --tls_cert_file and --tls_key_file');
  }
  return args;
}

function loadTestService() {
  const definition = protoLoader.loadSync('grpc/testing/test.proto', {
    includeDirs: [PROTO_ROOT],
    keepCase: true, // field names as in the .proto (response_size, not responseSize)
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).grpc.testing.TestService;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A COMPRESSABLE payload of `size` zero bytes, or null (then INVALID_ARGUMENT). */
function makePayload(type, size) {
  if (type !== 'COMPRESSABLE' && type !== 0) {
    return null;
  }
  if (!Number.isInteger(size) || size < 0) {
    return null;
  }
  return { type: 'COMPRESSABLE', body: Buffer.alloc(size) };
}

function invalidArgument(details) {
  return { code: grpc.status.INVALID_ARGUMENT, details };
}

/**
 * Echo Metadata: x-grpc-test-echo-initial goes back at once in the initial metadata.
 * Without it nothing is sent yet, so an early error stays a trailers-only response.
 */
function echoInitial(call) {
  const values = call.metadata.get(ECHO_INITIAL_KEY);
  if (values.length > 0) {
    const initial = new grpc.Metadata();
    for (const value of values) {
      initial.add(ECHO_INITIAL_KEY, value);
    }
    call.sendMetadata(initial);
  }
}

/** Echo Metadata: x-grpc-test-echo-trailing-bin goes back in the trailers. */
function echoTrailing(call) {
  const trailing = new grpc.Metadata();
  for (const value of call.metadata.get(ECHO_TRAILING_KEY)) {
    trailing.add(ECHO_TRAILING_KEY, value);
  }
  return trailing;
}

/** Echo Status: a response_status with a non-zero code ends the call with it. */
function requestedStatus(request, call) {
  const status = request.response_status;
  if (status && status.code) {
    return {
      code: status.code,
      details: status.message || '',
      metadata: echoTrailing(call),
    };
  }
  return null;
}

function payloadSize(request) {
  return request.payload && request.payload.body ? request.payload.body.length : 0;
}

/**
 * Serialises the writes of one streaming call: each step runs after the previous one,
 * interval_us sleeps accumulate, writes wait for the stream to drain, and a cancelled
 * call stops the chain.
 */
class Responder {
  constructor(call) {
    this.call = call;
    this.chain = Promise.resolve();
    this.cancelled = false;
    this.finished = false;
    this.cancelledPromise = new Promise((resolve) => {
      call.on('cancelled', () => {
        this.cancelled = true;
        resolve();
      });
    });
  }

  then(step) {
    this.chain = this.chain.then(() => (this.cancelled || this.finished ? undefined : step()));
    this.chain.catch((err) => {
      this.fail({ code: grpc.status.INTERNAL, details: `server error: ${err}` });
    });
    return this;
  }

  async write(message, intervalUs) {
    if (intervalUs > 0) {
      await Promise.race([sleep(intervalUs / 1000), this.cancelledPromise]);
    }
    if (this.cancelled || this.finished) {
      return;
    }
    if (!this.call.write(message)) {
      await Promise.race([
        new Promise((resolve) => this.call.once('drain', resolve)),
        this.cancelledPromise,
      ]);
    }
  }

  /** Queue one response per ResponseParameters of `request`; false if invalid. */
  respondTo(request) {
    const payloads = [];
    for (const params of request.response_parameters || []) {
      const payload = makePayload(request.response_type, params.size);
      if (payload === null) {
        return false;
      }
      payloads.push([payload, params.interval_us]);
    }
    for (const [payload, intervalUs] of payloads) {
      this.then(() => this.write({ payload }, intervalUs));
    }
    return true;
  }

  /** End with OK and the echoed trailers once everything queued before is written. */
  finish() {
    this.then(() => {
      this.finished = true;
      this.call.end(echoTrailing(this.call));
    });
  }

  /** End with `status` once everything queued before is written. */
  failAfter(status) {
    this.then(() => this.fail(status));
  }

  fail(status) {
    if (this.finished || this.cancelled) {
      return;
    }
    this.finished = true;
    if (!status.metadata) {
      status.metadata = echoTrailing(this.call);
    }
    this.call.emit('error', status);
  }
}

const handlers = {
  EmptyCall(call, callback) {
    echoInitial(call);
    callback(null, {}, echoTrailing(call));
  },

  UnaryCall(call, callback) {
    echoInitial(call);
    const request = call.request;
    const status = requestedStatus(request, call);
    if (status) {
      callback(status);
      return;
    }
    const payload = makePayload(request.response_type, request.response_size);
    if (payload === null) {
      callback(invalidArgument('unsupported response_type or response_size'));
      return;
    }
    // response_compressed / expect_compressed: not possible with grpc-js (see top).
    callback(null, { payload }, echoTrailing(call));
  },

  CacheableUnaryCall(call, callback) {
    const initial = new grpc.Metadata();
    initial.set('cache-control', 'max-age=60, public');
    for (const value of call.metadata.get(ECHO_INITIAL_KEY)) {
      initial.add(ECHO_INITIAL_KEY, value);
    }
    call.sendMetadata(initial);
    // Wall-clock milliseconds plus the monotonic clock's sub-millisecond part (ns).
    const now = BigInt(Date.now()) * 1000000n + (process.hrtime.bigint() % 1000000n);
    callback(
      null,
      { payload: { type: 'COMPRESSABLE', body: Buffer.from(now.toString(), 'ascii') } },
      echoTrailing(call),
    );
  },

  StreamingOutputCall(call) {
    echoInitial(call);
    const request = call.request;
    const responder = new Responder(call);
    const status = requestedStatus(request, call);
    if (status) {
      responder.fail(status);
      return;
    }
    if (!responder.respondTo(request)) {
      responder.fail(invalidArgument('unsupported response_type or response_size'));
      return;
    }
    responder.finish();
  },

  StreamingInputCall(call, callback) {
    echoInitial(call);
    let aggregated = 0;
    call.on('data', (request) => {
      aggregated += payloadSize(request);
    });
    call.on('end', () => {
      callback(null, { aggregated_payload_size: aggregated }, echoTrailing(call));
    });
    call.on('error', () => {});
  },

  FullDuplexCall(call) {
    echoInitial(call);
    const responder = new Responder(call);
    let done = false;
    call.on('data', (request) => {
      if (done) {
        return; // after a response_status the call takes no further messages
      }
      const status = requestedStatus(request, call);
      if (status) {
        done = true;
        responder.failAfter(status);
        return;
      }
      if (!responder.respondTo(request)) {
        done = true;
        responder.failAfter(invalidArgument('unsupported response_type or response_size'));
      }
    });
    call.on('end', () => {
      if (!done) {
        done = true;
        responder.finish();
      }
    });
  },

  HalfDuplexCall(call) {
    echoInitial(call);
    const responder = new Responder(call);
    const requests = [];
    call.on('data', (request) => requests.push(request));
    call.on('end', () => {
      for (const request of requests) {
        const status = requestedStatus(request, call);
        if (status) {
          responder.failAfter(status);
          return;
        }
        if (!responder.respondTo(request)) {
          responder.failAfter(invalidArgument('unsupported response_type or response_size'));
          return;
        }
      }
      responder.finish();
    });
  },
};

function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`server.js: ${err.message}`);
    process.exit(2);
  }
  const TestService = loadTestService();
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  });
  server.addService(TestService.service, handlers);

  let credentials;
  if (args.use_tls) {
    credentials = grpc.ServerCredentials.createSsl(
      null,
      [
        {
          cert_chain: fs.readFileSync(args.tls_cert_file),
          private_key: fs.readFileSync(args.tls_key_file),
        },
      ],
      false,
    );
  } else {
    credentials = grpc.ServerCredentials.createInsecure();
  }

  let stopping = false;
  const stop = (signal) => {
    if (stopping) {
      return;
    }
    stopping = true;
    console.log(`STOPPING on ${signal}`);
    server.forceShutdown();
    process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  server.bindAsync(`127.0.0.1:${args.port}`, credentials, (err, port) => {
    if (err) {
      console.error(`server.js: cannot bind 127.0.0.1:${args.port}: ${err.message}`);
      process.exit(1);
    }
    const version = require('@grpc/grpc-js/package.json').version;
    console.log(`grpc-js ${version}, ${args.use_tls ? 'TLS' : 'plaintext'}`);
    console.log(`LISTENING ${port}`);
  });
}

main();
