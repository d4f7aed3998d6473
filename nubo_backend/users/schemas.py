"""Replies of the user routes: a profile, a person as lists show them, follower pages."""

from __future__ import annotations

from datetime import datetime

from nubo_backend.edge.replies import Page, Reply


class UserSummary(Reply):
    """A person as lists and posts show them."""

    id: int
    username: str
    display_name: str
    avatar_url: str | None


class Profile(UserSummary):
    bio: str
    created_at: datetime
    followers_count: int
    following_count: int
    posts_count: int
    followed_by_me: bool | None = None  # only for a signed-in viewer


class Follow(UserSummary):
    followed_at: datetime


class FollowPage(Page):
    items: list[Follow]


class UserPage(Page):
    items: list[UserSummary]
