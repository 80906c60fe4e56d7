"""The tasks of a buildkit-ops checkout: the product's (buildkit_ops/tasks.py, also installed as the
`bkops` command) and the lab's (lab/tasks.py: lab.up, lab.down, lab.status, lab.run, demo).

Run `invoke --list` for the tasks and `invoke TASK --help` for each one's options.
"""
from invoke import Collection

from buildkit_ops import tasks as product
from buildkit_ops.cli import help_before_positional_arguments
from lab import tasks as lab_tasks

help_before_positional_arguments()

ns = Collection(lab_tasks.demo, lab_tasks.lab)
for t in product.ns.tasks.values():
    ns.add_task(t)
