"""One router per resource: jobs, artifacts, events, health, and the worker API."""
