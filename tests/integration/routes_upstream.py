# A small upstream app for the routes tests, Python standard library only. Prints
# "listening port=N" once it accepts connections on 127.0.0.1 (port 0: a free one).
#   POST /count      reads the body (Content-Length or chunked) in chunks, answers
#                    {"bytes": N, "sha256": HEX}
#   GET  /headers    answers the request headers it received, as a JSON list of [name, value]
#   GET  /slow?s=N   answers after N seconds
#   GET  /ws         WebSocket echo: the handshake, then each text or binary frame sent back
#                    unmasked, until a close frame or the end of the connection
import base64
import hashlib
import http.server
import json
import struct
import sys
import time
import urllib.parse

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def answer(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body_chunks(self):
        length = self.headers.get("Content-Length")
        if length is not None:
            left = int(length)
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    raise ConnectionError("body ended early")
                left -= len(chunk)
                yield chunk
            return
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    return
                left = size
                while left > 0:
                    chunk = self.rfile.read(min(left, 1 << 20))
                    left -= len(chunk)
                    yield chunk
                self.rfile.readline()

    def do_POST(self):
        if self.path != "/count":
            return self.answer(404, {"error": "no such path"})
        digest = hashlib.sha256()
        count = 0
        for chunk in self.body_chunks():
            digest.update(chunk)
            count += len(chunk)
        self.answer(200, {"bytes": count, "sha256": digest.hexdigest()})

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/headers":
            return self.answer(200, [[name, value] for name, value in self.headers.items()])
        if url.path == "/slow":
            time.sleep(float(urllib.parse.parse_qs(url.query)["s"][0]))
            return self.answer(200, {"slept": True})
        if url.path == "/ws":
            return self.websocket_echo()
        self.answer(404, {"error": "no such path", "path": self.path})

    def websocket_echo(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode = head[0] & 0x0F
            length = head[1] & 0x7F
            if length == 126:
                length = struct.unpack(">H", self.rfile.read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            if opcode == 0x8:
                self.wfile.write(b"\x88\x00")
                self.wfile.flush()
                self.close_connection = True
                return
            if length < 126:
                frame = bytes([0x80 | opcode, length])
            else:
                frame = bytes([0x80 | opcode, 126]) + struct.pack(">H", length)
            self.wfile.write(frame + payload)
            self.wfile.flush()


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
server.daemon_threads = True
print("listening port=%d" % server.server_address[1], flush=True)
server.serve_forever()
