"""Email over SMTP.

``PARTITUR_SMTP_URL`` says where and how::

    smtp://user:password@mail.example.com:587            STARTTLS when offered (the default)
    smtp://127.0.0.1:2525?starttls=never                 plain, e.g. a local relay
    smtp://mail.example.com:587?starttls=always          refuse to send without STARTTLS
    smtps://user:password@mail.example.com:465           TLS from the first byte
    ...?cafile=/etc/ssl/my-ca.pem  ...?verify=false      certificate checks

Each message is ``multipart/alternative`` (text and HTML) with a ``Message-ID`` derived from the
delivery's idempotency key and the key itself in ``X-Partitur-Key``: a message sent again after
a crash carries the same ``Message-ID``, which receiving systems use to drop duplicates.
Marketing messages carry ``List-Unsubscribe`` (the signed link) and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058).

smtplib runs in worker threads; a few connections are kept open and reused.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import functools
import hashlib
import smtplib
import ssl
import threading
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

from partitur.channels.base import DeliveryError, Envelope, Receipt
from partitur.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    tls: bool  # implicit TLS (smtps)
    starttls: str  # auto | always | never
    username: str | None
    password: str | None
    verify: bool = True
    cafile: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 30.0) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise InvalidInput(f"smtp_url must start with smtp:// or smtps://, not '{url}'")
        if not parts.hostname:
            raise InvalidInput("smtp_url has no host")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        starttls = query.get("starttls", "auto").lower()
        if starttls not in ("auto", "always", "never"):
            raise InvalidInput("smtp_url: starttls must be auto, always or never")
        tls = parts.scheme == "smtps"
        try:
            port = parts.port or (465 if tls else 25)
        except ValueError:
            raise InvalidInput("smtp_url has an invalid port") from None
        return cls(
            host=parts.hostname,
            port=port,
            tls=tls,
            starttls="never" if tls else starttls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            verify=query.get("verify", "true").lower() not in ("false", "0", "no"),
            cafile=query.get("cafile"),
            timeout=float(query.get("timeout", timeout)),
        )

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.cafile)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def message_id(key: str, sender: str) -> str:
    """``<digest@domain>``: the same key always gives the same Message-ID."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{_domain(sender)}>"


@functools.lru_cache(maxsize=64)
def _domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "partitur.invalid"


def build_email(envelope: Envelope, sender: str, *, date_s: float | None = None) -> bytes:
    """The MIME message (RFC 5322 bytes, CRLF line ends) for a rendered email envelope. Pure
    apart from ``date_s``.

    Written directly rather than through ``email.message.EmailMessage``, whose header objects
    cost about 2.5 ms of CPU per message (most of what sending an email cost us). Bodies are
    UTF-8 in quoted-printable (lines within 76 characters whatever the template produced);
    headers outside ASCII or longer than a line are RFC 2047-encoded and folded; the
    multipart boundary cannot occur in quoted-printable text."""
    content = envelope.content
    subject = " ".join(str(content.get("subject", "")).split())
    lines = [
        _header("From", _from_header(sender)),
        _header("To", envelope.to or "", address=True),
        _header("Subject", subject),
        f"Date: {formatdate(date_s, usegmt=True)}",
        f"Message-ID: {message_id(envelope.key, sender)}",
        _header("X-Partitur-Key", envelope.key),
    ]
    if envelope.unsubscribe_url:
        lines.append(_header("List-Unsubscribe", f"<{envelope.unsubscribe_url}>"))
        lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    lines.append("MIME-Version: 1.0")
    text, html = content.get("text"), content.get("html")
    if text and html:
        boundary = "=_" + hashlib.sha256(envelope.key.encode()).hexdigest()[:32]
        lines.append(f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"')
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        mark = f"--{boundary}\r\n".encode()
        return b"".join((head, mark, _part(str(text), "plain"), b"\r\n", mark,
                         _part(str(html), "html"), f"\r\n--{boundary}--\r\n".encode()))
    head = ("\r\n".join(lines) + "\r\n").encode()
    return head + _part(str(text) if text else str(html or ""), "plain" if text else "html")


def _part(body: str, subtype: str) -> bytes:
    raw = body.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    encoded = binascii.b2a_qp(raw, istext=True).replace(b"\n", b"\r\n")
    if not encoded.endswith(b"\r\n"):
        encoded += b"\r\n"
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + encoded


def _header(name: str, value: str, *, address: bool = False) -> str:
    value = " ".join(value.splitlines())  # never a line break of the caller's in a header
    if (value.isascii() and len(name) + len(value) <= 76) or address:
        # An address outside ASCII goes as UTF-8 (sent with SMTPUTF8), never encoded-words.
        return f"{name}: {value}"
    # Encoded words can be split anywhere, so even one long word folds within the line.
    folded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {folded}"


@functools.lru_cache(maxsize=64)
def _from_header(sender: str) -> str:
    name, address = parseaddr(sender)
    if not name:
        return address
    try:
        return formataddr((name, address), charset="utf-8")
    except UnicodeError:  # an address outside ASCII: the name encoded, the address as UTF-8
        return f"{Header(name, 'utf-8').encode()} <{address}>"


def _classify(exc: Exception) -> DeliveryError:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()), (550, b"refused"))
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        permanent = code >= 500
        return DeliveryError(
            f"recipient refused: {code} {text}",
            retryable=not permanent,
            bounce=permanent,
            code=code,
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return DeliveryError(f"SMTP authentication failed: {exc.smtp_code}", retryable=True)
    if isinstance(exc, smtplib.SMTPResponseException):
        text = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        permanent = exc.smtp_code >= 500
        return DeliveryError(
            f"SMTP {exc.smtp_code} {text}",
            retryable=not permanent,
            bounce=permanent,
            code=exc.smtp_code,
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryError(f"SMTP server: {exc}", retryable=True)
    return DeliveryError(f"SMTP connection failed: {type(exc).__name__}: {exc}", retryable=True)


class SmtpTransport:
    """Sends through one SMTP server; up to ``connections`` messages at once."""

    def __init__(self, config: SmtpConfig, sender: str, *, connections: int = 2) -> None:
        if not parseaddr(sender)[1]:
            raise InvalidInput(f"smtp_from '{sender}' is not an email address")
        self.config = config
        self.sender = sender
        self.address = parseaddr(sender)[1]
        self._idle: list[smtplib.SMTP] = []
        self._lock = threading.Lock()
        self._slots = asyncio.Semaphore(max(1, connections))

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        client: smtplib.SMTP
        if c.tls:
            client = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout, context=c.ssl_context())
        else:
            client = smtplib.SMTP(c.host, c.port, timeout=c.timeout)
        try:
            if not c.tls:
                client.ehlo()
                if c.starttls != "never" and client.has_extn("starttls"):
                    client.starttls(context=c.ssl_context())
                    client.ehlo()
                elif c.starttls == "always":
                    raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS")
            if c.username:
                client.login(c.username, c.password or "")
        except BaseException:
            _quietly_close(client)
            raise
        return client

    def _send_blocking(self, data: bytes, to: str) -> None:
        sender = self.address
        with self._lock:
            client = self._idle.pop() if self._idle else None
        reused = client is not None
        for _ in range(2):
            if client is None:
                client = self._connect()
            try:
                options: list[str] = []
                if not (sender.isascii() and to.isascii()):  # an internationalised address
                    if not client.has_extn("smtputf8"):
                        raise smtplib.SMTPNotSupportedError(
                            "the address is not ASCII and the server does not offer SMTPUTF8")
                    options = ["SMTPUTF8", "BODY=8BITMIME"]
                client.sendmail(sender, [to], data, mail_options=options)
            except smtplib.SMTPServerDisconnected:
                client = None
                if reused:  # an idle connection the server had closed: once more, fresh
                    reused = False
                    continue
                raise
            except smtplib.SMTPRecipientsRefused:
                with self._lock:  # the connection is fine; the address is not
                    self._idle.append(client)
                raise
            except BaseException:
                _quietly_close(client)
                raise
            with self._lock:
                self._idle.append(client)
            return

    async def send(self, message: Envelope) -> Receipt:
        if not message.to:
            raise DeliveryError("no email address to send to", retryable=False)
        data = build_email(message, self.sender)
        async with self._slots:
            try:
                await asyncio.to_thread(self._send_blocking, data, message.to)
            except (smtplib.SMTPException, OSError) as exc:
                raise _classify(exc) from None
        return Receipt(provider_id=message_id(message.key, self.sender))

    async def aclose(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for client in idle:
            await asyncio.to_thread(_quit, client)


def _quit(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        _quietly_close(client)


def _quietly_close(client: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        client.close()


def display_sender(name: str | None, address: str) -> str:
    return formataddr((name, address)) if name else address
