"""Alert rules and notifications on an endpoint's live numbers.

``machine`` is the state machine (no Django); ``values`` the metric source;
``rules`` and ``silences`` the writes people make; ``evaluation`` the
minute-by-minute evaluation (beat ``monitoring-alert-rules-evaluate``);
``notify`` the grouped email; ``selectors`` the reads; ``api`` and ``admin``
the HTTP and admin faces. The writes are re-exported by ``services``."""
