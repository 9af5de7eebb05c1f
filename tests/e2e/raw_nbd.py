# tests/e2e/raw_nbd.py - a bare NBD client for requests libnbd will not send
#
# libnbd (even with strict mode off) refuses reads and writes above 64 MiB
# before they leave the client. This speaks the protocol itself over a
# unix socket: fixed newstyle handshake, NBD_OPT_EXPORT_NAME, simple
# replies only, so any length up to 2^32 - 1 reaches the server.
#
#   c = RawNBD(path)          # connected; c.size is the export size
#   err, data = c.request(CMD_READ, offset, length)
#   c.send_header(CMD_WRITE, offset, length); c.send(payload)
#   err, data = c.reply()     # None if the server closed the connection
import socket
import struct

CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM = 0, 1, 2, 3, 4
CMD_CACHE, CMD_WRITE_ZEROES = 5, 6

_REQUEST_MAGIC = 0x25609513
_REPLY_MAGIC = 0x67446698
_NBDMAGIC = 0x4E42444D41474943
_IHAVEOPT = 0x49484156454F5054
_FLAG_FIXED_NEWSTYLE, _FLAG_NO_ZEROES = 1, 2
_OPT_EXPORT_NAME = 1


class RawNBD:
    def __init__(self, path, timeout=60.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.handle = 0
        magic, opt, flags = struct.unpack(">QQH", self._recv(18))
        if magic != _NBDMAGIC or opt != _IHAVEOPT:
            raise OSError("not a newstyle NBD server")
        cflags = _FLAG_FIXED_NEWSTYLE
        if flags & _FLAG_NO_ZEROES:
            cflags |= _FLAG_NO_ZEROES
        self.sock.sendall(struct.pack(">IQII", cflags, _IHAVEOPT,
                                      _OPT_EXPORT_NAME, 0))
        self.size, self.flags = struct.unpack(">QH", self._recv(10))
        if not cflags & _FLAG_NO_ZEROES:
            self._recv(124)

    def _recv(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                raise EOFError("the server closed the connection")
            buf += chunk
        return bytes(buf)

    def send_header(self, cmd, offset, length, flags=0):
        """Sends one request header; returns its handle."""
        self.handle += 1
        self.sock.sendall(struct.pack(">IHHQQI", _REQUEST_MAGIC, flags, cmd,
                                      self.handle, offset, length))
        self._last = (cmd, length)
        return self.handle

    def send(self, data):
        """Sends payload; False if the server closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def reply(self):
        """(errno, data) of the last request, or None if the connection
        closed. data is the payload of a successful read, else b""."""
        try:
            magic, err, handle = struct.unpack(">IIQ", self._recv(16))
            if magic != _REPLY_MAGIC or handle != self.handle:
                raise OSError("bad reply (magic %#x, handle %d)"
                              % (magic, handle))
            cmd, length = self._last
            data = self._recv(length) if cmd == CMD_READ and not err else b""
            return err, data
        except (EOFError, ConnectionError, socket.timeout):
            return None

    def request(self, cmd, offset, length, payload=b""):
        self.send_header(cmd, offset, length)
        if payload:
            self.send(payload)
        return self.reply()

    def close(self):
        try:
            self.send_header(CMD_DISC, 0, 0)
        except OSError:
            pass
        self.sock.close()
