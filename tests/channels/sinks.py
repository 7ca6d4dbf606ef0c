"""Real receivers on 127.0.0.1 for the channel tests: an SMTP server (aiosmtpd) and an HTTP
server that records requests and answers as told (webhooks, a Twilio-shaped SMS API)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import json
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage
    tls: bool
    login: str | None


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("bounce"):
            return "550 5.1.1 no such user"
        if address.startswith("later"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        login = session.auth_data.login.decode() if session.auth_data else None
        with self.sink.lock:
            self.sink.mails.append(
                Mail(envelope.mail_from, list(envelope.rcpt_tos), parsed,
                     server.transport.get_extra_info("ssl_object") is not None, login)
            )
        return "250 Message accepted"


class SmtpSink:
    """aiosmtpd on a free port. ``tls``: ``None`` (plain), ``"starttls"`` or ``"smtps"``;
    ``users``: accepted logins (then AUTH is required)."""

    def __init__(
        self,
        *,
        tls: str | None = None,
        cert: tuple[Path, Path] | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        self.mails: list[Mail] = []
        self.lock = threading.Lock()
        self.port = free_port()
        self.users = users
        kwargs: dict[str, Any] = {}
        if tls:
            assert cert is not None
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(cert[0]), str(cert[1]))
            kwargs["ssl_context" if tls == "smtps" else "tls_context"] = context
        if users is not None:
            kwargs.update(authenticator=self._auth, auth_required=True,
                          auth_require_tls=tls is not None)
        self.controller = Controller(_Handler(self), hostname=HOST, port=self.port, **kwargs)

    def _auth(self, server: Any, session: Any, envelope: Any, mechanism: str,
              data: Any) -> AuthResult:
        if isinstance(data, LoginPassword) and self.users is not None:
            login, password = data.login.decode(), data.password.decode()
            if self.users.get(login) == password:
                return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)

    def start(self) -> SmtpSink:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def wait(self, count: int, timeout: float = 10.0) -> list[Mail]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.mails) >= count:
                    return list(self.mails)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} mails, got {len(self.mails)}")


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode()).items()}


Answer = tuple[int, dict[str, str], bytes]


@dataclass
class HttpSink:
    """Records every request; ``answer(request) -> (status, headers, body)`` decides the
    reply (default 200 ``{}``); ``delay`` seconds before answering (timeouts)."""

    answer: Callable[[Request], Answer] | None = None
    delay: float = 0.0
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, self.path,
                                  {k.lower(): v for k, v in self.headers.items()}, body,
                                  time.monotonic())
                with sink.lock:
                    sink.requests.append(request)
                if sink.delay:
                    time.sleep(sink.delay)
                status, headers, reply = (sink.answer or _ok)(request)
                self.send_response(status)
                headers = {"Content-Type": "application/json", **headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_POST = do_PUT = do_PATCH = do_GET = _handle

            def log_message(self, *args: Any) -> None:
                return None

        self.lock = threading.Lock()
        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # many senders at once, as a real receiver allows

        self.server = Server((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{HOST}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> HttpSink:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait(self, count: int, timeout: float = 10.0) -> list[Request]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} requests, got {len(self.requests)}")


def _ok(request: Request) -> Answer:
    return 200, {}, b"{}"


def twilio(request: Request) -> Answer:
    """A Twilio-shaped Messages API: 201 with a sid, 400 for a number it cannot use."""
    form = request.form()
    if not request.path.endswith("/Messages.json") or request.method != "POST":
        return 404, {}, b'{"code": 20404, "message": "not found", "status": 404}'
    if "authorization" not in request.headers:
        return 401, {}, b'{"code": 20003, "message": "Authenticate", "status": 401}'
    if form.get("To", "").endswith("0000"):
        body = {"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400}
        return 400, {}, json.dumps(body).encode()
    sid = "SM" + request.headers.get("idempotency-key", "x")[-8:].replace(":", "")
    body = {"sid": sid, "status": "queued", "to": form.get("To"), "body": form.get("Body")}
    return 201, {}, json.dumps(body).encode()
