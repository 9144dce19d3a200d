#!/usr/bin/env python3
"""Local HTTP targets for the quickstart: one healthy, one failing, one slow, one wrong body.

Usage: demo_targets.py PORT_FILE   (binds 127.0.0.1:0, writes the port to PORT_FILE)
  /healthy  200 "webmon demo: all good"
  /fail     500
  /slow     sleeps 3 s, then 200 (beyond a 1 s timeout)
  /slowish  sleeps 0.4 s, then 200 "all good" (within a 1 s timeout)
  /wrong    200 with a body that does not contain "all good"
"""
import http.server
import socketserver
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path == "/healthy":
            self.reply(200, b"webmon demo: all good\n")
        elif self.path == "/fail":
            self.reply(500, b"internal error\n")
        elif self.path == "/slow":
            time.sleep(3)
            self.reply(200, b"webmon demo: all good, eventually\n")
        elif self.path == "/slowish":
            time.sleep(0.4)
            self.reply(200, b"webmon demo: all good, a little later\n")
        elif self.path == "/wrong":
            self.reply(200, b"maintenance page\n")
        else:
            self.reply(404, b"not found\n")

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    server = Server(("127.0.0.1", 0), Handler)
    with open(sys.argv[1], "w", encoding="ascii") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
