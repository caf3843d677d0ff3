"""FastAPI: endpoints ``await`` the async client; a Worker runs inside the app's lifespan.

    pip install -e '.[examples]'            # from a clone: fastapi, uvicorn, httpx, a server
    python examples/fastapi_app.py          # demo: calls the app in-process, then exits
    OMNIQ_REDIS_URL=redis://localhost:6379/0 uvicorn --app-dir examples fastapi_app:app

Server: set ``OMNIQ_REDIS_URL`` (for example ``redis://localhost:6379/0``) to use your own
Redis or Valkey. When it is unset, the demo starts a private embedded server and stops it at
exit (``redis-server`` or ``valkey-server`` from PATH, else the Valkey of the ``embedded``
extra). Served by uvicorn, the app starts no server: it connects to ``OMNIQ_REDIS_URL``, or to
``redis://127.0.0.1:6379/0`` when that is unset.
"""

import asyncio
import contextlib
import os

import httpx
from fastapi import FastAPI, Request

from omniq import AsyncOmniq
from omniq.aio.worker import Worker
from omniq.testing.embedded import EmbeddedServer


async def make_thumbnail(ctx):
    return {"thumbnail": f"thumb-{ctx.payload['image']}"}


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    url = os.environ.get("OMNIQ_REDIS_URL", "redis://127.0.0.1:6379/0")
    async with AsyncOmniq(url=url) as omniq:
        app.state.omniq = omniq
        async with Worker(omniq, "thumbnails", make_thumbnail, concurrency=4):
            yield  # the worker stops (finishing in-flight jobs) before the client closes


app = FastAPI(lifespan=lifespan)


@app.post("/images/{image}")
async def upload(image: str, request: Request):
    job_id = await request.app.state.omniq.publish("thumbnails", {"image": image})
    return {"job_id": job_id}


@app.get("/jobs/{job_id}")
async def job_status(job_id: str, request: Request):
    job = await request.app.state.omniq.get_job("thumbnails", job_id)
    return {"state": job.state, "result": job.result} if job else {"state": "unknown"}


async def wait_until_done(http: httpx.AsyncClient, job_id: str) -> dict:
    """Poll the status endpoint, as any HTTP client would."""
    for _ in range(500):
        status = (await http.get(f"/jobs/{job_id}")).json()
        if status["state"] == "completed":
            return status
        await asyncio.sleep(0.02)
    raise TimeoutError(job_id)


async def demo() -> None:
    transport = httpx.ASGITransport(app=app)  # in-process; the lifespan is entered by hand
    async with lifespan(app), httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        for name in ("a.png", "b.png"):
            job_id = (await http.post(f"/images/{name}")).json()["job_id"]
            print(job_id, (await wait_until_done(http, job_id))["result"])


if __name__ == "__main__":
    with contextlib.ExitStack() as stack:
        if "OMNIQ_REDIS_URL" not in os.environ:
            os.environ["OMNIQ_REDIS_URL"] = stack.enter_context(EmbeddedServer()).url
        asyncio.run(demo())
