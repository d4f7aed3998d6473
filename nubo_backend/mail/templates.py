"""The mails the server sends, in English and French, as plain text and HTML."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from string import Template

LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str
    html: str


# kind -> language -> (subject, paragraphs); a paragraph of $link is the call to action, and
# the HTML body shows it as a button with the action's label.
_MAILS: dict[str, dict[str, tuple[str, str, list[str]]]] = {
    "verify_email": {
        "en": ("Confirm your e-mail address", "Confirm my address", [
            "Hello $username,",
            "Please confirm that $email is your address by opening this link:",
            "$link",
            "The link works once and for $hours hours. If you did not sign up to Nubo, ignore this mail.",
        ]),
        "fr": ("Confirmez votre adresse e-mail", "Confirmer mon adresse", [
            "Bonjour $username,",
            "Confirmez que $email est bien votre adresse en ouvrant ce lien :",
            "$link",
            "Le lien sert une fois, pendant $hours heures. Si vous ne vous êtes pas inscrit sur Nubo, "
            "ignorez ce message.",
        ]),
    },
    "reset_password": {
        "en": ("Reset your password", "Choose a new password", [
            "Hello $username,",
            "Someone (we hope you) asked to reset the password of your Nubo account. Open this link to "
            "choose a new one:",
            "$link",
            "The link works once and for $minutes minutes. If you did not ask, ignore this mail: your "
            "password stays as it is.",
        ]),
        "fr": ("Réinitialisez votre mot de passe", "Choisir un nouveau mot de passe", [
            "Bonjour $username,",
            "Quelqu'un (vous, espérons-le) a demandé à réinitialiser le mot de passe de votre compte Nubo. "
            "Ouvrez ce lien pour en choisir un nouveau :",
            "$link",
            "Le lien sert une fois, pendant $minutes minutes. Si vous n'avez rien demandé, ignorez ce "
            "message : votre mot de passe ne change pas.",
        ]),
    },
    "password_reset_done": {
        "en": ("Your password was changed", "", [
            "Hello $username,",
            "The password of your Nubo account was just reset, and every session was signed out.",
            "If this was not you, reset it again at once and check the e-mail address of your account.",
        ]),
        "fr": ("Votre mot de passe a été changé", "", [
            "Bonjour $username,",
            "Le mot de passe de votre compte Nubo vient d'être réinitialisé, et toutes les sessions ont "
            "été déconnectées.",
            "Si ce n'était pas vous, réinitialisez-le de nouveau tout de suite et vérifiez l'adresse "
            "e-mail de votre compte.",
        ]),
    },
    "change_email": {
        "en": ("Confirm your new e-mail address", "Confirm my new address", [
            "Hello $username,",
            "You asked to use $email for your Nubo account. Open this link to confirm it:",
            "$link",
            "The link works once and for $hours hours. Until then your account keeps its current address.",
        ]),
        "fr": ("Confirmez votre nouvelle adresse e-mail", "Confirmer ma nouvelle adresse", [
            "Bonjour $username,",
            "Vous avez demandé à utiliser $email pour votre compte Nubo. Ouvrez ce lien pour la confirmer :",
            "$link",
            "Le lien sert une fois, pendant $hours heures. D'ici là, votre compte garde son adresse actuelle.",
        ]),
    },
    "email_change_notice": {
        "en": ("Your e-mail address is about to change", "", [
            "Hello $username,",
            "Someone signed in to your Nubo account asked to move it to $email. It changes once that "
            "address confirms.",
            "If this was not you, change your password now: that cancels nothing by itself, so also "
            "sign out every session.",
        ]),
        "fr": ("Votre adresse e-mail va changer", "", [
            "Bonjour $username,",
            "Quelqu'un connecté à votre compte Nubo a demandé à le passer sur $email. Le changement se "
            "fera quand cette adresse l'aura confirmé.",
            "Si ce n'était pas vous, changez votre mot de passe maintenant et déconnectez toutes les sessions.",
        ]),
    },
}

_HTML = Template("""<!doctype html>
<html lang="$lang"><head><meta charset="utf-8"><title>$subject</title></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 2em auto; color: #222">
$body
<p style="color: #888; font-size: small">Nubo</p>
</body></html>
""")


def language_of(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def render(kind: str, language: str | None, **params: str | int) -> Mail:
    """The mail `kind` in the account's language; `link`, if any, is the call to action."""
    lang = language_of(language)
    subject, action, paragraphs = _MAILS[kind][lang]
    text = "\n\n".join(Template(p).substitute(params) for p in paragraphs) + "\n\n-- \nNubo\n"
    safe = {name: escape(str(value)) for name, value in params.items()}
    html_parts = []
    for paragraph in paragraphs:
        if paragraph == "$link":
            link = safe["link"]
            html_parts.append(
                f'<p><a href="{link}" style="background: #2a6df4; color: #fff; padding: .6em 1em; '
                f'border-radius: 4px; text-decoration: none">{escape(action)}</a></p>\n'
                f'<p style="font-size: small; word-break: break-all">{link}</p>'
            )
        else:
            html_parts.append(f"<p>{Template(escape(paragraph)).substitute(safe)}</p>")
    html = _HTML.substitute(lang=lang, subject=escape(subject), body="\n".join(html_parts))
    return Mail(subject=subject, text=text, html=html)


def preferred_language(accept_language: str) -> str | None:
    """The first of our languages an Accept-Language header names (`fr-CA,fr;q=0.9,en;q=0.8`
    -> fr), weights taken into account; None when it names none."""
    ranked = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().partition("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else None
