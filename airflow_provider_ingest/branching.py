"""A DAG helper the example DAGs share: switch a branch off from the trigger form."""

from __future__ import annotations

from typing import Any


def branch_switch(name: str) -> Any:
    """A short-circuit task ``<name>_enabled`` that skips its direct downstream branch when the
    DAG param ``run_<name>`` is false (a final task with ``none_failed`` still runs)."""
    from airflow.sdk import task

    @task.short_circuit(task_id=f"{name}_enabled", ignore_downstream_trigger_rules=False)
    def enabled(params: dict | None = None) -> bool:
        return bool((params or {})[f"run_{name}"])

    return enabled()
