#!/usr/bin/env python3
"""The page-load bench's upstream (bench/run-page-load.sh): an unbundled dev server's first load, from
memory. GET /page.html imports N ES modules /m/0.js .. /m/N-1.js from one module script; its load
listener writes into the DOM when the load event came, when the module graph had run (ms from the
navigation's start) and which protocols carried the page and the modules. HTTP/1.1 keep-alive, a thread
per connection, a listen backlog of 1024 (socketserver's default of 5 drops the SYNs of a browser's
burst of connections and stalls the load for seconds). Usage: module_site.py PORT N
"""
import http.server
import sys

port, count = int(sys.argv[1]), int(sys.argv[2])

PAGE = (
    "<!DOCTYPE html><html><head><title>modules</title><script>\n"
    "performance.setResourceTimingBufferSize(100000);\n"
    "addEventListener('load', () => {\n"
    "  const nav = performance.getEntriesByType('navigation')[0];\n"
    "  const mods = performance.getEntriesByType('resource').filter(e => e.name.includes('/m/'));\n"
    "  const protos = [...new Set(mods.map(e => e.nextHopProtocol))].join(',');\n"
    "  document.body.insertAdjacentHTML('beforeend', '<p>result load ' + nav.loadEventStart.toFixed(1) +\n"
    "    ' modules ' + (window.modulesRan || -1).toFixed(1) + ' count ' + mods.length +\n"
    "    ' page ' + nav.nextHopProtocol + ' module-protocols ' + protos + '</p>');\n"
    "});\n"
    "</script></head><body><script type=\"module\">\n"
    + "".join(f"import m{i} from '/m/{i}.js';\n" for i in range(count))
    + f"window.modulesRan = performance.now() + 0 * m{count - 1};\n"
    "</script></body></html>\n"
).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/page.html":
            body, kind = PAGE, "text/html; charset=utf-8"
        elif self.path.startswith("/m/") and self.path.endswith(".js"):
            body, kind = f"export default {self.path[3:-3]};\n".encode(), "text/javascript"
        else:
            body, kind = b"not found\n", "text/plain"
        self.send_response(200 if kind != "text/plain" else 404)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True


Server(("127.0.0.1", port), Handler).serve_forever()
