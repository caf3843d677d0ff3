"""aiohttp: handlers ``await`` the async client; on_startup/on_cleanup own a Worker.

    pip install -e '.[examples]'            # from a clone: aiohttp and an embedded server
    python examples/aiohttp_app.py          # demo: serves on a free port, calls it, exits

Server: set ``OMNIQ_REDIS_URL`` (for example ``redis://localhost:6379/0``) to use your own
Redis or Valkey. When it is unset, the script starts a private embedded server and stops it
at exit (``redis-server`` or ``valkey-server`` from PATH, else the Valkey of the ``embedded``
extra).
"""

import asyncio
import contextlib
import os

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from omniq import AsyncOmniq
from omniq.aio.worker import Worker
from omniq.testing.embedded import EmbeddedServer

OMNIQ = web.AppKey("omniq", AsyncOmniq)
WORKER = web.AppKey("worker", Worker)


async def resize(ctx):
    return {"resized": f"small-{ctx.payload['image']}"}


async def on_startup(app: web.Application) -> None:
    app[OMNIQ] = AsyncOmniq(url=os.environ.get("OMNIQ_REDIS_URL", "redis://127.0.0.1:6379/0"))
    app[WORKER] = Worker(app[OMNIQ], "resize", resize, concurrency=4)
    await app[WORKER].start()


async def on_cleanup(app: web.Application) -> None:
    await app[WORKER].stop()  # finishes in-flight jobs first
    await app[OMNIQ].aclose()


async def upload(request: web.Request) -> web.Response:
    job_id = await request.app[OMNIQ].publish("resize", {"image": request.match_info["image"]})
    return web.json_response({"job_id": job_id})


async def job_status(request: web.Request) -> web.Response:
    job = await request.app[OMNIQ].get_job("resize", request.match_info["job_id"])
    return web.json_response({"state": job.state, "result": job.result} if job else {})


def make_app() -> web.Application:
    app = web.Application()
    app.add_routes([web.post("/images/{image}", upload), web.get("/jobs/{job_id}", job_status)])
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


async def wait_until_done(http: TestClient, job_id: str) -> dict:
    """Poll the status endpoint, as any HTTP client would."""
    for _ in range(500):
        status = await (await http.get(f"/jobs/{job_id}")).json()
        if status["state"] == "completed":
            return status
        await asyncio.sleep(0.02)
    raise TimeoutError(job_id)


async def demo() -> None:
    async with TestClient(TestServer(make_app())) as http:  # a real server on a free port
        for name in ("a.png", "b.png"):
            job_id = (await (await http.post(f"/images/{name}")).json())["job_id"]
            print(job_id, (await wait_until_done(http, job_id))["result"])


if __name__ == "__main__":
    with contextlib.ExitStack() as stack:
        if "OMNIQ_REDIS_URL" not in os.environ:
            os.environ["OMNIQ_REDIS_URL"] = stack.enter_context(EmbeddedServer()).url
        asyncio.run(demo())
