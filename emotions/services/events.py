"""Broadcast of job events to the channel layer (Redis), from any process."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def broadcast(groups: list[str], message: dict) -> None:
    """Send `message` to every group; a broken channel layer never breaks the job."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        for group in groups:
            async_to_sync(layer.group_send)(group, message)
    except Exception:  # Redis down: the state is saved already; pages catch up from the API.
        logger.warning("could not broadcast to %s", groups, exc_info=True)
