"""request_cost.py experiment: posts' reads without any of the viewer's part: no liked set and
no hidden set in the view's EVALSHA (every post then reads as not liked)."""

from nubo_backend.blocks import visibility
from nubo_backend.posts import service


def _none(stores, viewer_id):
    return {"set_key": None, "whole_set_key": None}


async def _nobody(stores, viewer_id, cached=None):
    return visibility.NOBODY


def patch(app):
    service._viewer_sets = _none
    service.hidden_from = _nobody
