"""The web console: the queen serves it at ``/``, with one event feed (``GET /events``) for
the cluster's and the jobs' changes."""
