"""request_cost.py experiment: posts' reads without the viewer's hidden users (blocks): the
view's EVALSHA reads no hidden set, and hydration is told nobody is hidden."""

from nubo_backend.blocks import visibility
from nubo_backend.posts import service

_sets = service._viewer_sets


def _without_hidden(stores, viewer_id):
    return {**_sets(stores, viewer_id), "whole_set_key": None}


async def _nobody(stores, viewer_id, cached=None):
    return visibility.NOBODY


def patch(app):
    service._viewer_sets = _without_hidden
    service.hidden_from = _nobody
