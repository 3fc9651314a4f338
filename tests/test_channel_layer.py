"""The channel layer outlives an idle wait longer than Redis's default socket timeout."""

import asyncio
import threading

from channels.layers import get_channel_layer


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

    outcome = {}

    def run() -> None:  # its own thread and loop: the browser tests keep one running here
        try:
            outcome["message"] = asyncio.run(scenario())
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["message"]["type"] == "hello"
