"""The mail module's pure parts: SMTP URLs, the language of a mail, rendering."""

from __future__ import annotations

from nubo_backend.mail.sender import SmtpServer, build_message
from nubo_backend.mail.templates import preferred_language, render


def test_smtp_urls_say_how_to_secure_the_connection() -> None:
    plain = SmtpServer.parse("smtp://user%40corp:p%3Ass@mail.example.com")
    assert (plain.hostname, plain.port) == ("mail.example.com", 587)
    assert (plain.username, plain.password) == ("user@corp", "p:ss")
    assert (plain.use_tls, plain.start_tls) == (False, None)  # STARTTLS when offered
    assert SmtpServer.parse("smtp+starttls://h:2525").start_tls is True
    implicit = SmtpServer.parse("smtps://h")
    assert (implicit.port, implicit.use_tls, implicit.start_tls) == (465, True, False)
    assert SmtpServer.parse("smtp://127.0.0.1:1025").username is None


def test_the_mail_language_follows_accept_language_weights() -> None:
    assert preferred_language("fr-CA,fr;q=0.9,en;q=0.8") == "fr"
    assert preferred_language("de-DE,en;q=0.5,fr;q=0.7") == "fr"
    assert preferred_language("de, ja") is None
    assert preferred_language("fr;q=0") is None
    assert preferred_language("") is None


def test_rendered_mails_escape_what_users_wrote_in_html() -> None:
    mail = render("verify_email", "en", username="<b>eve</b>", email="eve@example.test",
                  link="https://nubo.example/email/verify?token=abc&x=1", hours=48)
    assert "<b>eve</b>" in mail.text and "&lt;b&gt;eve&lt;/b&gt;" in mail.html and "<b>eve</b>" not in mail.html
    assert 'href="https://nubo.example/email/verify?token=abc&amp;x=1"' in mail.html
    assert render("verify_email", "xx", username="a", email="b", link="c", hours=1).subject == mail.subject


def test_a_message_has_both_bodies_and_a_message_id_from_the_sender_domain() -> None:
    message = build_message("Nubo <no-reply@nubo.example>", "a@example.test", "Subject", "text", "<p>html</p>")
    assert message.get_body(("plain",)).get_content().strip() == "text"
    assert message.get_body(("html",)).get_content().strip() == "<p>html</p>"
    assert message["Message-ID"].endswith("@nubo.example>")
