"""The embedded model is materialized once even when two commands ask at the same time (two `make` commands on one
machine, or two test workers): the second waits on the first's lock and then takes its folder, never building a
second copy over it (a build clears the partial folders of an earlier, killed attempt)."""

from __future__ import annotations

import threading

from core import atomic, settings
from resolver import local_models
from resolver.registry import load_recipe


def test_a_second_caller_waits_and_takes_the_first_callers_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("AFFINAGE_CACHE", str(tmp_path / "cache"))
    src = load_recipe("smollm2-135m-cpu").meta.local_source
    target = local_models.target_dir(src, settings.load().cache)
    got: list = []
    with atomic.locked(target):  # the first command, building
        waiter = threading.Thread(
            target=lambda: got.append(local_models.materialize(src, settings.load().cache)), daemon=True
        )
        waiter.start()
        waiter.join(2)
        assert waiter.is_alive() and got == []  # it waits for the lock, it does not build beside it
        target.mkdir(parents=True)
        (target / local_models.DONE).write_text("{}\n")  # the first command's finished folder
    waiter.join(30)
    assert got == [target]
    assert not list(target.parent.glob(f".{target.name}.*.partial"))  # nothing was built a second time
