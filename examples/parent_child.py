"""Parent/child: a document job fans out to page jobs; the last page to finish reports
that the whole document is done (``childs_init`` + ``child_ack``, idempotent under retries).

    python examples/parent_child.py

Install (from a clone): ``pip install -e '.[embedded]'``.

Server: set ``OMNIQ_REDIS_URL`` (for example ``redis://localhost:6379/0``) to use your own
Redis or Valkey. When it is unset, the script starts a private embedded server and stops it
at exit (``redis-server`` or ``valkey-server`` from PATH, else the Valkey of the ``embedded``
extra).
"""

import contextlib
import os
import threading

from omniq.client import OmniqClient
from omniq.testing.embedded import EmbeddedServer

print_lock = threading.Lock()


def say(text):
    with print_lock:  # handlers run in several threads at once: keep lines whole
        print(text)


def split_document(ctx):
    doc, pages = ctx.payload["document_id"], ctx.payload["pages"]
    key = f"document:{doc}"
    ctx.exec.childs_init(key, pages)  # or ctx.check_completion.init_job_counter(key, pages)
    for page in range(1, pages + 1):
        ctx.exec.publish("pages", {"document_id": doc, "page": page, "completion_key": key})
    print(f"{doc}: split into {pages} pages")


def process_page(ctx):
    doc, page = ctx.payload["document_id"], ctx.payload["page"]
    say(f"{doc}: page {page} done")  # the work
    # counts this job once, even if it is retried; or ctx.check_completion.job_decrement(key)
    remaining = ctx.exec.child_ack(ctx.payload["completion_key"])
    if remaining == 0:
        say(f"{doc}: all pages done")


def main(url: str) -> None:
    with OmniqClient(redis_url=url) as uq:
        uq.publish(queue="documents", payload={"document_id": "doc-1", "pages": 3})
        uq.publish(queue="documents", payload={"document_id": "doc-2", "pages": 2})
        uq.consume(queue="documents", handler=split_document, drain=True)
        uq.consume(queue="pages", handler=process_page, concurrency=3, drain=True)


if __name__ == "__main__":
    with contextlib.ExitStack() as stack:
        url = os.environ.get("OMNIQ_REDIS_URL") or stack.enter_context(EmbeddedServer()).url
        main(url)
