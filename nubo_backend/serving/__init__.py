"""Running the server as an operator needs it: checks before serving, binding the ports,
several instances under a supervisor, a graceful drain on stop, and the one adapter over
Sanic's HTTP internals (strict request heads, a 413 every client can read).

Nothing here knows the domains; `app.py` and `cli.py` put these pieces together.
"""
