"""A local Ray shared by this folder's tests, its workers set up with the test fakes."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # ray_helpers, ray_fakes
from ray_helpers import PYTHONPATH, worker_env  # noqa: E402


@pytest.fixture(scope="session")
def local_ray():
    """ray.init(num_cpus=2, include_dashboard=False), once for the session."""
    ray = pytest.importorskip("ray")
    env = worker_env()
    os.environ.update({k: v for k, v in env.items() if k != "PYTHONPATH"})
    sys.path[:0] = [p for p in PYTHONPATH.split(os.pathsep) if p not in sys.path]
    import ray_fakes

    ray_fakes.install()  # in the driver too: the CLI and the local engine see them
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": env})
    yield ray
    ray.shutdown()
