"""WebSocket: authenticate, join the owner's groups, relay events — nothing else.

`ws/jobs/` joins the user's group (every job of theirs: the jobs indicator) and
accepts {"action": "subscribe", "job": id} / {"action": "unsubscribe", "job": id}.
`ws/jobs/<id>/` subscribes to one job at connect. Each subscription first sends a
snapshot of the job's current state, so a page that reconnects catches up.
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from emotions import selectors
from emotions.models import Job, job_group, user_group
from emotions.services.jobs import serialize_job

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


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

    async def receive_json(self, content, **kwargs) -> None:
        if not isinstance(content, dict):
            await self.send_json({"type": "error", "error": "Messages must be JSON objects."})
            return
        action, job_id = content.get("action"), content.get("job")
        if action not in {"subscribe", "unsubscribe"} or not isinstance(job_id, int):
            await self.send_json(
                {"type": "error", "error": 'Send {"action": "subscribe", "job": <id>}.'}
            )
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
            await self.send_json({"type": "error", "job": job_id, "error": "Job not found."})
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
