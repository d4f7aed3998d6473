"""Push requests and answers, in the shape of Mastodon's Web Push API where there is one."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from nubo_backend.edge.replies import Reply
from nubo_backend.edge.validation import Body, Query

Policy = Literal["all", "followed", "follower", "none"]
Platform = Literal["apns", "fcm"]
# Both platforms' alphabets (APNs: hex; FCM: base64url and colons); each checks its own format.
DeviceToken = Annotated[str, StringConstraints(min_length=1, max_length=4096, pattern=r"^[A-Za-z0-9_:\-]+$")]


class Alerts(BaseModel):
    """Kinds of event pushed; each on unless set to false. Kinds this server does not push are ignored."""

    model_config = ConfigDict(extra="ignore", strict=True)

    message: bool | None = None
    mention: bool | None = None
    comment: bool | None = None
    like: bool | None = None
    follow: bool | None = None

    def given(self) -> dict[str, bool]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class PushKeys(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    p256dh: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    auth: Annotated[str, StringConstraints(min_length=1, max_length=100)]


class WebPushSubscription(BaseModel):
    """A browser's PushSubscription.toJSON() (`expirationTime` and the like are ignored)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    endpoint: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    keys: PushKeys


class SubscriptionData(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    alerts: Alerts = Field(default_factory=Alerts)
    policy: Policy | None = None


class SubscribeBody(Body):
    subscription: WebPushSubscription
    data: SubscriptionData = Field(default_factory=SubscriptionData)


class SubscriptionUpdateBody(Body):
    data: SubscriptionData


class DeviceBody(Body):
    platform: Platform
    token: DeviceToken
    alerts: Alerts = Field(default_factory=Alerts)
    policy: Policy = "all"


class DeviceQuery(Query):
    platform: Platform
    token: DeviceToken


class AlertStates(Reply):
    message: bool
    mention: bool
    comment: bool
    like: bool
    follow: bool


class PushSubscriptionReply(Reply):
    """The session's Web Push subscription; `server_key` is the VAPID public key to subscribe with."""

    id: int
    endpoint: str
    alerts: AlertStates
    policy: Policy
    server_key: str


class DeviceReply(Reply):
    """A native device registered for pushes."""

    id: int
    platform: Platform
    token: str
    alerts: AlertStates
    policy: Policy
