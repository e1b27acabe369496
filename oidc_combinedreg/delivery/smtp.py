"""Email over SMTP (smtplib), with STARTTLS or implicit TLS and an optional login.

One connection per message: codes and notifications are rare, and a fresh connection never carries
a broken state from an earlier one. Failures become :class:`DeliveryFailed` with a reason a page can
show: the server cannot be reached, refused the login, or refused the recipient.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage as MimeMessage
from email.utils import formatdate, make_msgid
from enum import StrEnum

from .base import Channel, DeliveryFailed, EmailMessage

__all__ = ["SmtpSecurity", "SmtpSender"]


class SmtpSecurity(StrEnum):
    STARTTLS = "starttls"
    TLS = "tls"
    #: plain SMTP: loopback relays and tests only (config refuses it in production)
    NONE = "none"


class SmtpSender:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        security: SmtpSecurity = SmtpSecurity.STARTTLS,
        username: str = "",
        password: str = "",
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.security = security
        self.username = username
        self.password = password
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()

    def build(self, message: EmailMessage) -> MimeMessage:
        """The MIME message: a text part and an HTML alternative."""
        mime = MimeMessage()
        mime["From"] = self.sender
        mime["To"] = message.to
        mime["Subject"] = message.subject
        mime["Date"] = formatdate(localtime=False)
        mime["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        mime["Auto-Submitted"] = "auto-generated"
        mime.set_content(message.text)
        mime.add_alternative(message.html, subtype="html")
        return mime

    def _connect(self) -> smtplib.SMTP:
        if self.security is SmtpSecurity.TLS:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self.ssl_context
            )
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.security is SmtpSecurity.STARTTLS:
            smtp.starttls(context=self.ssl_context)
        return smtp

    def send_email(self, message: EmailMessage) -> None:
        mime = self.build(message)
        try:
            with self._connect() as smtp:
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(mime)
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryFailed(Channel.EMAIL, "recipient refused", permanent=True) from None
        except smtplib.SMTPAuthenticationError:
            raise DeliveryFailed(Channel.EMAIL, "the mail server refused our login") from None
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600
            raise DeliveryFailed(
                Channel.EMAIL, f"the mail server answered {exc.smtp_code}", permanent=permanent
            ) from None
        except (smtplib.SMTPException, OSError):
            raise DeliveryFailed(Channel.EMAIL, "cannot reach the mail server") from None
