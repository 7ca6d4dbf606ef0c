"""The profile worker: consumes the event log in order and keeps identity and profiles."""

from partitur.worker.runner import ProfileWorker

__all__ = ["ProfileWorker"]
