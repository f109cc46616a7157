// Calls pwreset with Zitadel's official npm client, as a Node application would, and prints
// what each call returned as one JSON document. Driven by tests/test_node_clients.py.
//
//   node client.mjs '{"transport": "grpc", "baseUrl": "http://127.0.0.1:8081", "token": "...",
//                     "calls": [{"method": "getUserByID", "request": {"userId": "1"}}]}'
//
// transport: "grpc"          @zitadel/client/node createServerTransport (gRPC, HTTP/2 h2c)
//            "grpc-web"      @zitadel/client/web createClientTransport (gRPC-web over fetch)
//            "grpc-web-node" @connectrpc/connect-node createGrpcWebTransport (HTTP/1.1)
//            "connect-proto" @connectrpc/connect-node createConnectTransport, binary (HTTP/1.1)
// A request may name "$<name>.<field>" to use a field of an earlier call's answer
// ({"userId": "$added.userId"}); a call may carry "headers" (gRPC metadata) and "token".
import { create, fromBinary, toBinary, toJson, fromJson } from "@bufbuild/protobuf";
import { ConnectError, Code, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { createServerTransport } from "@zitadel/client/node";
import { createClientTransport } from "@zitadel/client/web";
import { createUserServiceClient } from "@zitadel/client/v2";
import { ErrorDetailSchema } from "@zitadel/proto/zitadel/message_pb.js";
import { UserService } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";

function bearer(token) {
  return (next) => (req) => {
    req.header.set("Authorization", `Bearer ${token}`);
    return next(req);
  };
}

function transportFor(kind, baseUrl, token) {
  switch (kind) {
    case "grpc":
      return createServerTransport(token, { baseUrl, httpVersion: "2" });
    case "grpc-web":
      return createClientTransport(token, { baseUrl });
    case "grpc-web-node":
      return createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors: [bearer(token)] });
    case "connect-proto":
      return createConnectTransport({
        baseUrl, httpVersion: "1.1", useBinaryFormat: true, interceptors: [bearer(token)],
      });
    default:
      throw new Error(`unknown transport ${kind}`);
  }
}

function resolve(value, answers) {
  if (typeof value === "string" && value.startsWith("$")) {
    const [name, ...path] = value.slice(1).split(".");
    return path.reduce((node, key) => node?.[key], answers[name]);
  }
  if (Array.isArray(value)) return value.map((item) => resolve(item, answers));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v, answers)]));
  }
  return value;
}

async function run(input) {
  const clients = {};
  const client = (token) =>
    (clients[token] ??= createUserServiceClient(transportFor(input.transport, input.baseUrl, token)));
  const answers = {};
  const results = [];
  for (const call of input.calls) {
    const method = UserService.method[call.method];
    const request = fromJson(method.input, resolve(call.request, answers));
    try {
      const response = await client(call.token ?? input.token)[call.method](request, {
        headers: call.headers ?? {},
        timeoutMs: 20000,
      });
      const json = toJson(method.output, response);
      if (call.name) answers[call.name] = json;
      results.push({ method: call.method, ok: true, response: json });
    } catch (err) {
      const error = ConnectError.from(err);
      results.push({
        method: call.method,
        ok: false,
        code: Code[error.code],
        message: error.rawMessage,
        details: error.findDetails(ErrorDetailSchema).map((d) => ({ id: d.id, message: d.message })),
      });
    }
  }
  return results;
}

// Encoding both ways with @zitadel/proto's generated code: a request encoded here, and a
// response encoded by pwreset (hex), decoded here.
function codec(input) {
  const method = UserService.method[input.method];
  const request = toBinary(method.input, fromJson(method.input, input.request));
  const response = toJson(method.output, fromBinary(method.output, Buffer.from(input.responseHex, "hex")));
  return { requestHex: Buffer.from(request).toString("hex"), response };
}

const input = JSON.parse(process.argv[2]);
const output = input.codec ? codec(input.codec) : await run(input);
process.stdout.write(JSON.stringify(output));
