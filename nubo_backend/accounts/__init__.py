"""Accounts people can get back into (docs/accounts.md): e-mail verification, password reset,
e-mail change and two-factor sign-in, with their links carried by nubo_backend/mail."""
