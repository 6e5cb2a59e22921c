"""What the container tests share: whether an engine and the images are there (else a skip, or a
failure where `KONTOR_REQUIRE_CONTAINERS=1`, as `make test` sets it)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from kontor.testing.containers import LOCAL_IMAGES


def require_engine(*images: str) -> None:
    """Skip (or fail, where required) unless podman and the local images named are there."""
    missing = []
    if shutil.which("podman") is None and not os.environ.get("DOCKER_HOST"):
        missing.append("a container engine (podman)")
    elif shutil.which("podman"):
        missing += [LOCAL_IMAGES.get(name, name) for name in images
                    if subprocess.run(["podman", "image", "exists", LOCAL_IMAGES.get(name, name)],
                                      check=False).returncode != 0]
    if missing:
        reason = f"missing {', '.join(missing)}: run `make images`"
        if os.environ.get("KONTOR_REQUIRE_CONTAINERS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
