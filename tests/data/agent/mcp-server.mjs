// mcp-server.mjs - a tiny MCP server on the official @modelcontextprotocol/sdk,
// for the ech-agent tests.  ES modules ignore NODE_PATH: the tests copy this
// file next to the node_modules the SDK was installed in.
//
//   node mcp-server.mjs                      stdio
//   node mcp-server.mjs --http [--json]      Streamable HTTP on 127.0.0.1, a free port,
//                                            printed as "listening PORT" on stdout;
//                                            --json answers with JSON instead of SSE
//
// Tools (listed two per page, so clients must follow nextCursor): echo, add,
// slow (waits `ms`, says "slow: cancelled" on stderr when cancelled), fail
// (an isError result), crash (the process exits mid-call), picture (image
// plus text content), getenv (a variable's value), shout (writes to stderr).
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";

const obj = (props, required) => ({ type: "object", properties: props, required });
const tools = [
  { name: "echo", description: "Repeat the text", inputSchema: obj({ text: { type: "string" } }, ["text"]) },
  { name: "add", description: "Add two numbers", inputSchema: obj({ a: { type: "number" }, b: { type: "number" } }, ["a", "b"]) },
  { name: "slow", description: "Wait ms milliseconds", inputSchema: obj({ ms: { type: "number" } }, ["ms"]) },
  { name: "fail", description: "Always fails", inputSchema: obj({}) },
  { name: "crash", description: "Exits the server mid-call", inputSchema: obj({}) },
  { name: "picture", description: "Returns an image", inputSchema: obj({}) },
  { name: "getenv", description: "Value of an environment variable", inputSchema: obj({ name: { type: "string" } }, ["name"]) },
  { name: "shout", description: "Writes to stderr", inputSchema: obj({ text: { type: "string" } }, ["text"]) },
];
const PAGE = 2;
const text = (t, isError = false) => ({ content: [{ type: "text", text: t }], isError });

function makeServer() {
  const server = new Server({ name: "ech-test-server", version: "1.0.0" }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async (req) => {
    const start = req.params?.cursor ? parseInt(req.params.cursor.replace("page-", ""), 10) : 0;
    const page = tools.slice(start, start + PAGE);
    const next = start + PAGE < tools.length ? { nextCursor: "page-" + (start + PAGE) } : {};
    return { tools: page, ...next };
  });
  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const a = req.params.arguments ?? {};
    switch (req.params.name) {
      case "echo": return text(String(a.text));
      case "add": return text(String(Number(a.a) + Number(a.b)));
      case "slow":
        return await new Promise((resolve) => {
          const t = setTimeout(() => resolve(text("done waiting")), Number(a.ms));
          extra.signal.addEventListener("abort", () => {
            clearTimeout(t);
            process.stderr.write("slow: cancelled\n");
            resolve(text("cancelled"));
          });
        });
      case "fail": return text("it failed on purpose", true);
      case "crash": process.stderr.write("crash: exiting\n"); process.exit(3);
      case "picture":
        return { content: [{ type: "text", text: "a red dot:" },
          { type: "image", data: Buffer.alloc(300, 7).toString("base64"), mimeType: "image/png" }] };
      case "getenv": return text(process.env[a.name] ?? "(unset)");
      case "shout": process.stderr.write("shout: " + a.text + "\n"); return text("shouted");
      default: throw new Error("no tool " + req.params.name);
    }
  });
  return server;
}

process.stderr.write("ech-test-server: starting (pid " + process.pid + ")\n");
if (process.argv.includes("--http")) {
  const json = process.argv.includes("--json");
  const sessions = new Map();
  const http = createServer(async (req, res) => {
    const sid = req.headers["mcp-session-id"];
    let transport = sid ? sessions.get(sid) : undefined;
    if (sid && !transport) {
      res.writeHead(404).end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null }));
      return;
    }
    if (!transport) {
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: json,
        onsessioninitialized: (id) => sessions.set(id, transport),
      });
      transport.onclose = () => { if (transport.sessionId) sessions.delete(transport.sessionId); };
      await makeServer().connect(transport);
    }
    await transport.handleRequest(req, res);
  });
  http.listen(0, "127.0.0.1", () => console.log("listening " + http.address().port));
} else {
  await makeServer().connect(new StdioServerTransport());
}
