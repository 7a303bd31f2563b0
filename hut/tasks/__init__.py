"""Tasks: how a run turns data into batches, a loss and dev metrics.

The trainer is task-agnostic: it asks the registered task (:data:`TASKS`) for a training dataset,
a collate function, the loss of a batch and the evaluation metrics. One module per kind of task:

* :mod:`hut.tasks.base`: the :class:`Task` interface, the registry, ``build_task``, ``task_info``;
* :mod:`hut.tasks.glue`: GLUE sequence classification / regression (one class per spec);
* :mod:`hut.tasks.e2e`: E2E NLG, causal-LM generation scored with the official-equivalent metrics;
* :mod:`hut.tasks.squad`: SQuAD v1.1 extractive QA (span head), EM/F1 as the official script.
"""
from hut.tasks.base import TASKS, Task, build_task, task_info
from hut.tasks.glue import GlueTask, register_glue_task
from hut.tasks.e2e import E2ETask, first_line, lm_loss
from hut.tasks.squad import SquadTask

__all__ = ["TASKS", "Task", "build_task", "task_info", "GlueTask", "register_glue_task", "E2ETask",
           "first_line", "lm_loss", "SquadTask"]
