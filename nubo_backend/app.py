"""create_app(settings): the Sanic app with its blueprints, listeners and error handler."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
from collections.abc import Callable
from time import perf_counter

from sanic import Blueprint, Sanic
from sanic_ext import openapi
from sanic_ext.extensions.http.extension import HTTPExtension
from sanic_ext.extensions.openapi.extension import OpenAPIExtension

from nubo_backend import __version__
from nubo_backend.apidocs.routes import configure as configure_api_docs
from nubo_backend.auth.tokens import TokenVerifier
from nubo_backend.edge.client_ip import TrustedProxies, client_ip
from nubo_backend.edge.errors import NuboErrorHandler
from nubo_backend.edge.openapi_errors import describe_error_responses
from nubo_backend.edge.pagination import MAX_ROW_ID
from nubo_backend.jsonutil import dumps_str, loads
from nubo_backend.mail.sender import MailSender
from nubo_backend.observability.http import observe_http
from nubo_backend.observability.logs import AccessLog, RequestIds, setup_logging
from nubo_backend.observability.sampler import Sampler
from nubo_backend.observability.tracing import RequestSpans, current_trace_id, setup_tracing
from nubo_backend.outbox.relay import Relay
from nubo_backend.serving.drain import install_graceful_shutdown
from nubo_backend.serving.http_protocol import NuboHttp, NuboSanic
from nubo_backend.serving.stopping import install_stop_handling
from nubo_backend.settings import Settings
from nubo_backend.stores import open_stores

log = logging.getLogger("nubo.app")


def blueprints() -> list[Blueprint]:
    """Every domain's routes. Imported here so that a domain is one line to add."""
    from nubo_backend.accounts.routes import bp as accounts
    from nubo_backend.apidocs.routes import bp as apidocs
    from nubo_backend.auth.routes import bp as auth
    from nubo_backend.blocks.routes import bp as blocks
    from nubo_backend.demo.routes import bp as demo
    from nubo_backend.health.routes import bp as health
    from nubo_backend.media.routes import bp as media
    from nubo_backend.messaging.routes import bp as messaging
    from nubo_backend.moderation.routes import bp as moderation
    from nubo_backend.notifications.routes import bp as notifications
    from nubo_backend.posts.routes import bp as posts
    from nubo_backend.previews.routes import bp as previews
    from nubo_backend.push.routes import bp as push
    from nubo_backend.realtime.routes import bp as realtime
    from nubo_backend.realtime.routes import ws_bp as realtime_ws
    from nubo_backend.search.routes import bp as search
    from nubo_backend.tags.routes import bp as tags
    from nubo_backend.users.routes import bp as users

    return [health, auth, users, posts, messaging, realtime_ws, realtime, notifications, media, moderation,
            search, tags, blocks, push, previews, demo, accounts, apidocs]


def row_id(segment: str) -> int:
    """Route parameter type `<x:id>`: a positive bigint. Anything else matches no route (404)
    instead of reaching the database driver and overflowing it."""
    value = int(segment)
    if not 0 < value <= MAX_ROW_ID:
        raise ValueError(segment)
    return value


def create_app(settings: Settings, name: str = "nubo") -> Sanic:
    settings.check()
    setup_logging(settings)
    app = NuboSanic(  # Sanic on our HTTP adapter (serving/http_protocol.py)
        name,
        dumps=dumps_str,
        loads=loads,
        configure_logging=False,
        error_handler=NuboErrorHandler(),
        env_prefix="NUBO_SANIC_",
    )
    app.ctx.settings = settings
    app.ctx.token_verifier = TokenVerifier(settings.jwt_secret)
    app.ctx.trusted_proxies = TrustedProxies.parse(settings.trusted_proxies)
    app.router.register_pattern("id", row_id, r"^\d{1,19}$")
    _configure(app, settings)
    for bp in blueprints():
        app.blueprint(bp)
    _add_listeners(app, settings)
    install_graceful_shutdown(app, settings.shutdown_grace)
    install_stop_handling(app, settings.shutdown_grace)
    spans = setup_tracing()
    _add_request_log(app, current_trace_id if spans is not None else None)
    observe_http(app, spans)  # (after the access line's hook: the request's span is current for it)
    _add_observability_listeners(app, settings, spans)
    _describe_row_ids(app)
    describe_error_responses(app)
    return app


def _describe_row_ids(app: Sanic) -> None:
    @app.before_server_start(priority=1000)
    async def document_id_parameters(app: Sanic) -> None:
        """sanic-ext would describe an `<x:id>` segment by row_id's signature (an object); say
        what the route takes, before sanic-ext builds the OpenAPI document."""
        for route in app.router.routes:
            for param in route.params.values():
                if param.cast is row_id:
                    schema = openapi.Long(minimum=1, maximum=MAX_ROW_ID)
                    openapi.parameter(param.name, schema, "path", required=True)(route.handler)


def _configure(app: Sanic, settings: Settings) -> None:
    # CORS and /docs first: sanic-ext reads these once, when its extensions start (app.extend, below). Set
    # after that, they were ignored: CORS answered no origin, even a configured one, and an idle
    # CORS middleware ran on every request.
    origins = settings.cors_origin_list
    app.config.CORS = bool(origins)
    app.config.CORS_ORIGINS = ",".join(origins)
    app.config.CORS_ALLOW_HEADERS = "authorization,content-type,x-request-id"
    app.config.CORS_EXPOSE_HEADERS = "x-request-id"
    configure_api_docs(app.config)  # /docs without a CDN (apidocs/routes.py); read at app.extend too
    # The sanic-ext extensions nubo uses: OpenAPI (the document and /docs) and HTTP (CORS, the
    # automatic OPTIONS and HEAD answers). Not its dependency injection, which nubo does not use
    # and which dispatches a signal on every request to look for dependencies; nor its health
    # monitor, logging or templating, all off unless configured.
    app.extend(built_in_extensions=False, extensions=[OpenAPIExtension, HTTPExtension])
    app.config.REQUEST_MAX_SIZE = settings.max_body_bytes
    app.config.ACCESS_LOG = False  # one structured line per request instead, below
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.WEBSOCKET_MAX_SIZE = 64 * 1024
    # No task per socket for the heartbeat: realtime/heartbeat.py pings them all from one.
    app.config.WEBSOCKET_PING_INTERVAL = None
    app.ext.openapi.describe(
        "Nubo API",
        version=__version__,
        description="REST API of Nubo. Real-time events on the /ws WebSocket.",
    )
    app.ext.openapi.add_security_scheme("bearer", "http", scheme="bearer", bearer_format="JWT")


def _add_listeners(app: Sanic, settings: Settings) -> None:
    @app.before_server_start
    async def open_connections(app: Sanic) -> None:
        app.ctx.stores = await open_stores(settings)
        app.ctx.relay = Relay(app.ctx.stores)
        app.ctx.relay.start()
        # Mail waits in its queue until an SMTP server is configured (docs/accounts.md).
        app.ctx.mail_sender = MailSender(app.ctx.stores) if settings.smtp_url else None
        if app.ctx.mail_sender is not None:
            app.ctx.mail_sender.start()
        elif settings.is_production:
            log.warning("NUBO_SMTP_URL is not set: verification and password reset mails wait unsent")
        if settings.push_configured:
            # Imported only then: its HTTP client stack is most of a second of start-up.
            from nubo_backend.push.sender import PushSender

            app.ctx.push_sender = PushSender(app.ctx.stores)
            app.ctx.push_sender.start()

    @app.after_server_start
    async def calm_the_garbage_collector(app: Sanic) -> None:
        # Everything alive now (modules, routes, pools) lives as long as the process: move it
        # out of the collector's sight, and collect young objects less often. Shorter GC
        # pauses under load, measured in docs/benchmarks.md.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        log.info("stores open", extra={"postgres": "ok", "redis": "ok", "mongo": "ok"})

    @app.after_server_stop
    async def close_connections(app: Sanic) -> None:
        push_sender = getattr(app.ctx, "push_sender", None)
        if push_sender is not None:
            await push_sender.stop()
        relay = getattr(app.ctx, "relay", None)
        if relay is not None:
            await relay.stop()
        mail_sender = getattr(app.ctx, "mail_sender", None)
        if mail_sender is not None:
            await mail_sender.stop()
        stores = getattr(app.ctx, "stores", None)
        if stores is not None:
            await stores.close()


# A client's X-Request-ID is kept (to follow a request across a proxy and us) only when it
# cannot forge a log line or inject markup: otherwise we make one.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _add_observability_listeners(app: Sanic, settings: Settings, spans: RequestSpans | None) -> None:
    @app.after_server_start
    async def start_sampling(app: Sanic) -> None:
        if settings.metrics_port:  # (state gauges are read by nobody otherwise)
            app.ctx.metrics_sampler = Sampler(app.ctx.stores, settings.metrics_sample_interval)
            app.ctx.metrics_sampler.start()

    @app.before_server_stop
    async def stop_sampling(app: Sanic) -> None:
        sampler = getattr(app.ctx, "metrics_sampler", None)
        if sampler is not None:
            await sampler.stop()

    if spans is not None:
        @app.after_server_stop
        async def flush_spans(app: Sanic) -> None:
            await asyncio.to_thread(spans.flush)


def _add_request_log(app: NuboSanic, trace_id: Callable[[], str] | None = None) -> None:
    """The request id header and the access line of every answer, as one plain call before its
    head is written (serving/http_protocol.py says why not a response middleware). `trace_id`:
    the current trace's id, for the line (tracing on)."""
    ids = RequestIds()
    access = AccessLog()  # (create_app has set up logging)
    safe_id = _SAFE_REQUEST_ID.fullmatch
    write_line = access.request if access.enabled else None

    @app.before_response_head
    def log_request(http: NuboHttp) -> None:
        request, response = http.request, http.response
        given = request.headers.get("x-request-id")
        request_id = given if given is not None and safe_id(given) else ids.next()
        response.headers["X-Request-ID"] = request_id
        if write_line is not None:
            started = http.started
            write_line(request.method, request.path,
                       client_ip(request), response.status,
                       (perf_counter() - started) * 1000 if started is not None else None, request_id,
                       trace_id() if trace_id is not None else "")
