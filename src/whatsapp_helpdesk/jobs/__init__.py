"""The outbox's job kinds (issue 13 item 2).

`payloads.py` declares each kind (its stored name, its label, its typed payload) and
`queue.py` queues one; both import no use case, so any use case may queue work.
`registry.py` says what the worker does with each kind (handler, retry policy, give-up
action); it imports the use cases' handlers, so only the worker (and tests) import it.
"""

from whatsapp_helpdesk.jobs.payloads import JobPayload
from whatsapp_helpdesk.jobs.queue import QueuedWork, enqueue, enqueue_many

__all__ = ["JobPayload", "QueuedWork", "enqueue", "enqueue_many"]
