"""A stand-in for Airflow's ``task_state_store`` (``context["task_state_store"]``), for calling an
operator's ``execute`` directly in a test, across simulated retries (pass the same store again).

It is the core's own in-memory store (``airflow_provider_ingest.jobs.MemoryTaskStateStore``), which
keeps the rules of Airflow 3.3's ``TaskStateStoreAccessor`` that a provider can trip over: a value
is JSON (stored as its JSON round trip, so a tuple comes back a list and a set is refused), ``None``
is refused (``ValueError: Cannot set value as None``: a key is deleted, not blanked), and
``delete`` of a missing key is harmless. Subclass and override ``set`` to kill the "worker" at a
chosen write.
"""

from __future__ import annotations

from airflow_provider_ingest.jobs import MemoryTaskStateStore as TaskStateStore

__all__ = ["TaskStateStore"]
