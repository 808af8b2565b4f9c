"""Gunicorn hooks for the web processes (used by the Procfile's ``web``
line with ``-c gunicorn.conf.py``; command-line flags still set bind,
workers and threads).

* ``post_worker_init``: load the serving routing table and models before
  the worker takes requests, so the first prediction is not slow.
* ``worker_exit``: write the prediction log rows still buffered in the
  worker (apps.serving.logbuffer), so a graceful stop or restart loses none.
"""


def post_worker_init(worker):
    try:
        from apps.serving.runtime import runtime

        runtime.refresh(force=True)
    except Exception:  # a cold cache only costs the first request some time
        worker.log.exception("could not warm the serving runtime")


def worker_exit(server, worker):
    try:
        from apps.serving import logbuffer

        written = logbuffer.flush()
        if written:
            server.log.info("flushed %d buffered prediction log rows", written)
    except Exception:
        server.log.exception("could not flush the prediction log buffer")
