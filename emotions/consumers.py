"""WebSocket: authenticate, join the owner's groups, relay events — nothing else.

`ws/jobs/` joins the user's group (every job of theirs: the jobs indicator) and
accepts {"action": "subscribe", "job": id} / {"action": "unsubscribe", "job": id}.
`ws/jobs/<id>/` subscribes to one job at connect. Each subscription first sends a
snapshot of the job's current state, so a page that reconnects catches up.
"""

import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from emotions import selectors
from emotions.models import Job, job_group, user_group
from emotions.services.jobs import serialize_job

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
# A page sends tiny commands; anything longer is a mistake or an attack, answered and
# dropped (the server refuses frames over its own, larger limit at the protocol level).
MAX_MESSAGE_CHARS = 4096
# Job ids are database keys: positive and within a 64-bit integer.
MAX_JOB_ID = 2**63 - 1
USAGE = 'Send {"action": "subscribe", "job": <id>} or {"action": "unsubscribe", "job": <id>}.'


@database_sync_to_async
def _snapshot(user, job_id: int) -> dict | None:
    try:
        return serialize_job(selectors.job_for(user, job_id))
    except (Job.DoesNotExist, ValueError, TypeError):
        return None


class JobsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.groups_joined: set[str] = set()
        # Accept, then close with a reason code the page understands (a refused
        # handshake would only say "403" and the page would retry forever).
        if self.user is None or not self.user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        job_id = self.scope["url_route"]["kwargs"].get("job_id")
        if job_id is not None:
            snapshot = await _snapshot(self.user, int(job_id))
            await self.accept()
            if snapshot is None:
                await self.close(code=CLOSE_FORBIDDEN)
                return
            await self._join(job_group(int(job_id)))
            await self.send_json({"type": "snapshot", "job": snapshot})
            return
        await self.accept()
        await self._join(user_group(self.user.pk))

    async def _join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.add(group)

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        """Every frame gets an answer and the socket stays open: a bad one (binary, too
        long, not JSON) is told what is wrong instead of ending the connection (1011)."""
        if text_data is None:
            await self._error("Binary frames are not understood: send JSON text. " + USAGE)
            return
        if len(text_data) > MAX_MESSAGE_CHARS:
            await self._error(
                f"Message too long ({len(text_data)} characters; at most "
                f"{MAX_MESSAGE_CHARS}). " + USAGE
            )
            return
        try:
            content = json.loads(text_data)
        except ValueError:  # includes UnicodeDecodeError and nesting too deep for json
            await self._error("Messages must be JSON. " + USAGE)
            return
        except RecursionError:
            await self._error("Messages must be JSON, nested a few levels at most. " + USAGE)
            return
        await self.receive_json(content, **kwargs)

    async def _error(self, text: str, **extra) -> None:
        await self.send_json({"type": "error", **extra, "error": text})

    async def receive_json(self, content, **kwargs) -> None:
        if not isinstance(content, dict):
            await self._error("Messages must be JSON objects. " + USAGE)
            return
        action, job_id = content.get("action"), content.get("job")
        valid_id = type(job_id) is int and 1 <= job_id <= MAX_JOB_ID  # no bools, no floats
        if action not in {"subscribe", "unsubscribe"} or not valid_id:
            await self._error(USAGE)
            return
        if action == "unsubscribe":
            group = job_group(job_id)
            await self.channel_layer.group_discard(group, self.channel_name)
            self.groups_joined.discard(group)
            await self.send_json({"type": "unsubscribed", "job": job_id})
            return
        snapshot = await _snapshot(self.user, job_id)
        if snapshot is None:
            # Same answer for "not yours" and "does not exist": nothing leaks.
            await self._error("Job not found.", job=job_id)
            return
        await self._join(job_group(job_id))
        await self.send_json({"type": "snapshot", "job": snapshot})

    async def job_event(self, message: dict) -> None:
        # A subscribed job's events arrive through both its job group and the user
        # group: deliver them once, with their data, through the job group.
        if message.get("via") == "user" and job_group(message["job"]["id"]) in self.groups_joined:
            return
        await self.send_json(
            {"type": message["event"], "job": message["job"], "data": message.get("data")}
        )
