"""Documents -> pages as a flow: a document job splits into page jobs, and a "document done"
job runs once every page has completed, with their results (``ctx.exec.publish_flow`` +
``ctx.children_results()``; docs/workflows.md). The work of examples/parent_child.py without
a counter: the queue knows when the pages are done, and keeps what they returned.

    python examples/documents_pages.py

Install (from a clone): ``pip install -e '.[embedded]'``.

Server: set ``OMNIQ_REDIS_URL`` (for example ``redis://localhost:6379/0``) to use your own
Redis or Valkey. When it is unset, the script starts a private embedded server and stops it
at exit (``redis-server`` or ``valkey-server`` from PATH, else the Valkey of the ``embedded``
extra).
"""

import contextlib
import os
import threading

from omniq import FlowJob
from omniq.client import OmniqClient
from omniq.testing.embedded import EmbeddedServer

print_lock = threading.Lock()


def say(text):
    with print_lock:  # handlers run in several threads at once: keep lines whole
        print(text)


def split_document(ctx):
    doc, pages = ctx.payload["document_id"], ctx.payload["pages"]
    say(f"{doc}: split into {pages} pages")
    # one flow: the "document done" job waits in state waiting_deps until every page job
    # (its children) has completed; all of it is written before this handler returns
    flow = ctx.exec.publish_flow(FlowJob(
        queue="documents-done",
        payload={"document_id": doc},
        children=[FlowJob(queue="pages", payload={"document_id": doc, "page": page})
                  for page in range(1, pages + 1)],
    ))
    return {"done_job": flow.job_id}  # the parent's id (flow.children: the pages')


def process_page(ctx):
    doc, page = ctx.payload["document_id"], ctx.payload["page"]
    words = 100 * page  # the work
    say(f"{doc}: page {page} done")
    return {"page": page, "words": words}  # kept by the parent, even once this job is gone


def document_done(ctx):
    doc = ctx.payload["document_id"]
    results = ctx.children_results()  # {page job id: its result}, in the order given
    pages = [r["page"] for r in results.values()]
    words = sum(r["words"] for r in results.values())
    say(f"{doc}: all pages done (pages {pages}, {words} words)")


HANDLERS = {"documents": split_document, "pages": process_page,
            "documents-done": document_done}


def handle(ctx):
    return HANDLERS[ctx.queue](ctx)


def main(url: str) -> None:
    with OmniqClient(redis_url=url) as uq:
        docs = {doc: uq.publish(queue="documents", payload={"document_id": doc, "pages": n})
                for doc, n in (("doc-1", 3), ("doc-2", 2))}
        # split the documents and run their pages (one worker, two queues in priority
        # order); drain=True returns once nothing is ready and nothing runs
        uq.consume(queue=["documents", "pages"], handler=handle, concurrency=3, drain=True)
        # each "document done" job left waiting_deps when its document's last page
        # completed: run them (a long-running worker would consume all three queues)
        uq.consume(queue="documents-done", handler=handle, drain=True)
        for doc, job_id in docs.items():  # each flow as a tree (or: omniq flow QUEUE ID)
            flow = uq.get_flow("documents-done", uq.result("documents", job_id)["done_job"])
            pages = ", ".join(page.state for page in flow.children)
            print(f"{doc}: {flow.queue} {flow.state}; its pages: {pages}")


if __name__ == "__main__":
    with contextlib.ExitStack() as stack:
        url = os.environ.get("OMNIQ_REDIS_URL") or stack.enter_context(EmbeddedServer()).url
        main(url)
