"""OpenML: datasets, tasks and runs of openml.org (the `openml` extra).

`openml://2,t/1,r/100` reads dataset 2, task 1 and run 100 of
www.openml.org through openml-python (`openml+test://` for OpenML's test
server); a bare number is a dataset. A dataset is an asset of kind `dataset`
named as OpenML addresses it (`d/2`), versioned as OpenML versions it; a task
(`t/1`) reads its dataset, and a run (`r/100`, kind `model`) is its flow
trained on its task's dataset. openml-python reads what its cache holds
without asking the server (`--cache-dir` points it at a cache); the scan says
which objects came from there.
"""

from connectors.openml.connector import OpenmlConfig, OpenmlConnector

__all__ = ["OpenmlConfig", "OpenmlConnector"]
