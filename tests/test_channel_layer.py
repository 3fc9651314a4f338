"""The channel layer outlives an idle wait longer than Redis's default socket timeout."""

import asyncio

from channels.layers import get_channel_layer

from tests.live import run_in_own_loop


def test_receive_survives_idle_waits_past_the_default_socket_timeout():
    async def scenario() -> dict:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        # Nothing arrives for 7 s: channels-redis blocks 5 s in BZPOPMIN, then again; with
        # redis-py 8's default 5 s socket timeout the first read would raise TimeoutError.
        receiving = asyncio.create_task(layer.receive(channel))
        await asyncio.sleep(7)
        await layer.send(channel, {"type": "hello"})
        return await asyncio.wait_for(receiving, 10)

    assert run_in_own_loop(scenario, timeout=30)["type"] == "hello"
