"""`tuneloop beat` alone sends the periodic work to the queues, for however many workers."""

import json
import os
import signal
import subprocess
import sys

import pytest
import redis

from tests.services import wait_until


@pytest.mark.slow
def test_the_beat_sends_the_periodic_tasks(app_env, redis_url):
    queue = redis.Redis.from_url(redis_url)
    queue.delete("generate")
    beat = subprocess.Popen([sys.executable, "-m", "app.cli", "beat", "--loglevel", "WARNING"],
                            env=dict(os.environ), start_new_session=True)
    try:
        # Both entries come due 10 and 15 s after the start (celery_app's beat_schedule).
        def sent() -> set[str]:
            return {json.loads(message)["headers"]["task"] for message in queue.lrange("generate", 0, -1)}

        assert wait_until(lambda: sent() >= {"tuneloop.dispatch_rounds", "tuneloop.refill_pool"}, 60,
                          "the beat to send both periodic tasks")
        assert beat.poll() is None
    finally:
        os.killpg(beat.pid, signal.SIGKILL)
        beat.wait()
        queue.delete("generate")  # no later worker should act on these
        queue.close()
