// A pass-through HTTP proxy that adds one credential header to every request and changes
// nothing else: method, path, Host, Origin and every other header, status, response headers and
// the (possibly streamed, SSE) body are forwarded as they are.
//
// The MCP conformance suite has no option for request headers and mailagent has no
// unauthenticated MCP mode (on purpose), so the suite talks to the real authenticated door
// through this proxy, the way a client with a configured key would.
//
// Usage: node auth-proxy.mjs LISTEN_PORT UPSTREAM_PORT   (header name and value from the
// environment: PROXY_HEADER_NAME, PROXY_HEADER_VALUE; the value is never printed)
import http from "node:http";

const [listenPort, upstreamPort] = process.argv.slice(2).map(Number);
const name = process.env.PROXY_HEADER_NAME;
const value = process.env.PROXY_HEADER_VALUE;
if (!listenPort || !upstreamPort || !name || !value) {
  console.error("usage: PROXY_HEADER_NAME=.. PROXY_HEADER_VALUE=.. node auth-proxy.mjs LISTEN_PORT UPSTREAM_PORT");
  process.exit(2);
}

const agent = new http.Agent({ keepAlive: true });
const server = http.createServer((req, res) => {
  const headers = { ...req.headers, [name.toLowerCase()]: value };
  const upstream = http.request(
    { host: "127.0.0.1", port: upstreamPort, method: req.method, path: req.url, headers, agent },
    (up) => {
      res.writeHead(up.statusCode, up.rawHeaders);
      res.flushHeaders();
      up.pipe(res);
    },
  );
  upstream.on("error", (err) => {
    if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
    res.end(`proxy: ${err.message}`);
  });
  // A client closing its SSE stream is a cancellation: pass it on.
  res.on("close", () => upstream.destroy());
  req.pipe(upstream);
});
server.listen(listenPort, "127.0.0.1", () => console.error(`auth proxy on 127.0.0.1:${listenPort} -> ${upstreamPort}`));
