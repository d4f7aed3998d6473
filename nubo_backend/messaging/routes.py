"""Conversations and messages over REST. Members only; senders alone change their messages."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from nubo_backend.auth.budgets import budgeted
from nubo_backend.auth.guard import caller_id, require_auth
from nubo_backend.edge.pagination import PageQuery, decode_id_cursor, decode_time_id_cursor, page_parameters
from nubo_backend.edge.replies import no_content, refusal, returns
from nubo_backend.edge.validation import parse_body, parse_query
from nubo_backend.jsonutil import json_response
from nubo_backend.messaging import reactions, service
from nubo_backend.messaging.schemas import (
    ConversationOut,
    ConversationPage,
    MessageEdit,
    MessageOut,
    MessagePage,
    MessageReactions,
    NewConversation,
    NewMembers,
    NewMessage,
    ReadMarker,
    ReadReceipt,
)
from nubo_backend.posts.schemas import PostVersionPage
from nubo_backend.previews.messages import preview_message_later

bp = Blueprint("messaging")


@bp.post("/conversations")
@openapi.tag("conversations")
@returns(201, ConversationOut, "The new conversation")
@returns(200, ConversationOut, "The direct conversation that already existed")
@refusal(403, "Not allowed")
@openapi.body({"application/json": openapi.Component(NewConversation)}, required=True)
@require_auth
@budgeted("conversation")
async def create_conversation(request: Request) -> HTTPResponse:
    """Open a direct conversation ({user_id}: returns the existing one) or create a group ({title, member_ids})."""
    data = parse_body(request, NewConversation)
    stores = request.app.ctx.stores
    if data.user_id is not None:
        conversation, created = await service.open_direct(stores, caller_id(request), data.user_id)
        return json_response(conversation, status=201 if created else 200)
    conversation = await service.create_group(stores, caller_id(request), data.title, data.member_ids or [])
    return json_response(conversation, status=201)


@bp.get("/conversations")
@openapi.tag("conversations")
@returns(200, ConversationPage)
@page_parameters
@require_auth
async def list_conversations(request: Request) -> HTTPResponse:
    """The caller's conversations, newest activity first, with last message and unread count."""
    query = parse_query(request, PageQuery)
    before = decode_time_id_cursor(query.cursor)
    return json_response(
        await service.list_conversations(request.app.ctx.stores, caller_id(request), query.limit, before)
    )


@bp.get("/conversations/<conversation_id:id>")
@openapi.tag("conversations")
@returns(200, ConversationOut)
@refusal(403, "Not a member")
@require_auth
async def get_conversation(request: Request, conversation_id: int) -> HTTPResponse:
    """One conversation with its members."""
    return json_response(await service.get_conversation(request.app.ctx.stores, caller_id(request), conversation_id))


@bp.post("/conversations/<conversation_id:id>/members")
@openapi.tag("conversations")
@returns(200, ConversationOut, "The conversation with its members")
@refusal(403, "Not the owner, or not a group")
@openapi.body({"application/json": openapi.Component(NewMembers)}, required=True)
@require_auth
@budgeted("conversation")
async def add_members(request: Request, conversation_id: int) -> HTTPResponse:
    """Add people to a group (owners only)."""
    data = parse_body(request, NewMembers)
    conversation = await service.add_members(request.app.ctx.stores, caller_id(request), conversation_id, data.user_ids)
    return json_response(conversation)


@bp.delete("/conversations/<conversation_id:id>/members/<user_id:id>")
@openapi.tag("conversations")
@no_content("The member is removed")
@refusal(403, "Not the owner")
@require_auth
async def remove_member(request: Request, conversation_id: int, user_id: int) -> HTTPResponse:
    """Remove a member from a group (owners), or leave it (your own id)."""
    await service.remove_member(request.app.ctx.stores, caller_id(request), conversation_id, user_id)
    return HTTPResponse(status=204)


@bp.post("/conversations/<conversation_id:id>/leave")
@openapi.tag("conversations")
@no_content("You left")
@refusal(403, "Not a member")
@require_auth
async def leave(request: Request, conversation_id: int) -> HTTPResponse:
    """Leave a group."""
    await service.remove_member(request.app.ctx.stores, caller_id(request), conversation_id, caller_id(request))
    return HTTPResponse(status=204)


@bp.get("/conversations/<conversation_id:id>/messages")
@openapi.tag("messages")
@returns(200, MessagePage)
@refusal(403, "Not a member")
@page_parameters
@require_auth
async def list_messages(request: Request, conversation_id: int) -> HTTPResponse:
    """Messages of a conversation, newest first (deleted ones as tombstones)."""
    query = parse_query(request, PageQuery)
    before_id = decode_id_cursor(query.cursor)
    return json_response(
        await service.list_messages(request.app.ctx.stores, caller_id(request), conversation_id, query.limit, before_id)
    )


@bp.post("/conversations/<conversation_id:id>/messages")
@openapi.tag("messages")
@returns(201, MessageOut, "The message")
@returns(200, MessageOut, "Already stored under this client_id")
@refusal(403, "Not a member")
@openapi.body({"application/json": openapi.Component(NewMessage)}, required=True)
@require_auth
@budgeted("message")
async def send_message(request: Request, conversation_id: int) -> HTTPResponse:
    """Send {body, client_id, media_ids?}; a retry with the same client_id returns the first message (200)."""
    data = parse_body(request, NewMessage)
    message, created = await service.send_message(
        request.app.ctx.stores, caller_id(request), conversation_id, data.body, data.client_id,
        media_ids=data.media_ids,
    )
    if created:
        preview_message_later(request.app.ctx.stores, message["id"], data.body)  # after the commit
    return json_response(message, status=201 if created else 200)


@bp.post("/conversations/<conversation_id:id>/read")
@openapi.tag("conversations")
@returns(200, ReadReceipt)
@refusal(403, "Not a member")
@openapi.body({"application/json": openapi.Component(ReadMarker)}, required=True)
@require_auth
async def mark_read(request: Request, conversation_id: int) -> HTTPResponse:
    """Move the caller's read marker to {message_id}."""
    data = parse_body(request, ReadMarker)
    receipt = await service.mark_read(request.app.ctx.stores, caller_id(request), conversation_id, data.message_id)
    return json_response(receipt)


@bp.patch("/messages/<message_id:id>")
@openapi.tag("messages")
@returns(200, MessageOut, "The message as edited")
@refusal(403, "Not your message")
@openapi.body({"application/json": openapi.Component(MessageEdit)}, required=True)
@require_auth
@budgeted("message")
async def edit_message(request: Request, message_id: int) -> HTTPResponse:
    """Edit your own message."""
    data = parse_body(request, MessageEdit)
    message = await service.edit_message(request.app.ctx.stores, caller_id(request), message_id, data.body)
    preview_message_later(request.app.ctx.stores, message_id, data.body, edited=True)  # the card follows the link
    return json_response(message)


@bp.delete("/messages/<message_id:id>")
@openapi.tag("messages")
@no_content("The message is deleted")
@refusal(403, "Not your message")
@require_auth
async def delete_message(request: Request, message_id: int) -> HTTPResponse:
    """Delete your own message for everyone (a tombstone remains)."""
    await service.delete_message(request.app.ctx.stores, caller_id(request), message_id)
    return HTTPResponse(status=204)


EMOJI_PARAMETER = "One emoji (one grapheme: a flag, a skin tone or a ZWJ sequence is one), percent-encoded"


@bp.put("/messages/<message_id:id>/reactions/<emoji:str>", unquote=True)
@openapi.tag("messages")
@openapi.parameter("emoji", openapi.String(description=EMOJI_PARAMETER), "path", required=True)
@returns(200, MessageReactions, "The message's reactions, with the caller's")
@refusal(403, "Not a member")
@refusal(409, "The message was deleted")
@refusal(422, "Not one emoji")
@require_auth
async def add_reaction(request: Request, message_id: int, emoji: str) -> HTTPResponse:
    """React to a message with one emoji (idempotent); the members get `message.reaction`."""
    result = await reactions.react(request.app.ctx.stores, caller_id(request), message_id, emoji, True)
    return json_response(result)


@bp.delete("/messages/<message_id:id>/reactions/<emoji:str>", unquote=True)
@openapi.tag("messages")
@openapi.parameter("emoji", openapi.String(description=EMOJI_PARAMETER), "path", required=True)
@returns(200, MessageReactions, "The message's reactions, without the caller's")
@refusal(403, "Not a member")
@refusal(409, "The message was deleted")
@refusal(422, "Not one emoji")
@require_auth
async def remove_reaction(request: Request, message_id: int, emoji: str) -> HTTPResponse:
    """Take a reaction back (idempotent); the members get `message.reaction`."""
    result = await reactions.react(request.app.ctx.stores, caller_id(request), message_id, emoji, False)
    return json_response(result)


@bp.get("/messages/<message_id:id>/history")
@openapi.tag("messages")
@returns(200, PostVersionPage, "The versions the message's edits replaced")
@refusal(403, "Not a member")
@page_parameters
@require_auth
async def message_history(request: Request, message_id: int) -> HTTPResponse:
    """The versions a message's edits replaced, newest first (members only)."""
    query = parse_query(request, PageQuery)
    result = await reactions.message_history(request.app.ctx.stores, caller_id(request), message_id,
                                             query.limit, decode_id_cursor(query.cursor))
    return json_response(result)
