"""The study's live table (eval/study/progress.py): the step and loss read from a run's training log as axolotl
writes it (the lines below are from a real CPU run's logs/train.log: dataset bars, the trainer's bar, the
evaluation's bar interrupting it, redrawn after), and the rich table, live on a terminal, one line per change
in a log."""

from __future__ import annotations

import io

from rich.console import Console

from eval.study.progress import Progress, train_progress
from eval.study.spec import StudyRun

CONFIG = '{\n  "lr_scheduler": "cosine",\n  "max_steps": 3,\n  "micro_batch_size": 2\n}\n'
DATASET = "Saving the dataset (1/1 shards): 100%|██████████| 8/8 [00:03<00:00,  2.26 examples/s]\n"
TRAIN_START = "  0%|          | 0/3 [00:00<?, ?it/s][2026-12-01 13:42:55,192] [INFO] Running evaluation step...\n"
EVAL = "\r  0%|          | 0/4 [00:00<?, ?it/s]\r 50%|█████     | 2/4 [00:01<00:01,  1.72it/s]"
EVAL_END = "\r100%|██████████| 4/4 [00:02<00:00,  1.29it/s]\n"
STEP_1 = " 33%|███▎      | 1/3 [00:07<00:15,  7.90s/it]\n"
LOSS_1 = "{'loss': '3.872', 'grad_norm': '0.8816', 'learning_rate': '0', 'epoch': '0.04'}\n"
REDRAW = "100%|██████████| 4/4 [00:02<00:00,  1.29it/s]\n"  # tqdm redraws the finished evaluation bar
STEP_2 = " 67%|██████▋   | 2/3 [00:13<00:06,  6.27s/it]\n"
LOSS_2 = "{'loss': '3.979', 'grad_norm': '0.903', 'learning_rate': '0.0005', 'epoch': '0.08'}\n"


def progress_of(tmp_path, *parts: str) -> tuple[str, str]:
    (tmp_path / "logs").mkdir(exist_ok=True)
    (tmp_path / "logs" / "train.log").write_text("".join(parts), encoding="utf-8")
    return train_progress(tmp_path)


def test_the_step_is_the_trainers_bar_not_an_evaluations(tmp_path):
    assert progress_of(tmp_path, CONFIG, DATASET) == ("", "")  # a dataset's bar is not a step
    assert progress_of(tmp_path, CONFIG, DATASET, TRAIN_START, EVAL) == ("0/3", "")  # mid-evaluation
    assert progress_of(tmp_path, CONFIG, DATASET, TRAIN_START, EVAL, EVAL_END, STEP_1, LOSS_1, REDRAW) == (
        "1/3",
        "3.872",
    )
    everything = (CONFIG, DATASET, TRAIN_START, EVAL, EVAL_END, STEP_1, LOSS_1, REDRAW, STEP_2, LOSS_2)
    assert progress_of(tmp_path, *everything) == ("2/3", "3.979")
    # no max_steps printed (an epochs run): the first unlabeled bar, the trainer's, gives the total
    assert progress_of(tmp_path, *everything[1:]) == ("2/3", "3.979")
    assert train_progress(tmp_path / "not-started") == ("", "") and train_progress(None) == ("", "")


def runs() -> list[StudyRun]:
    return [
        StudyRun(key=k, label=k, recipe="smollm2-135m-cpu", overrides={}, config=k, where=f"runs[{i}]")
        for i, k in enumerate("ab")
    ]


def test_in_a_log_each_change_of_state_is_one_line_and_the_table_closes_it():
    out = io.StringIO()
    with Progress(runs(), "study cpu", Console(file=out, force_terminal=False, width=160)) as prog:
        prog.update("a", state="training", step="1/3", loss="3.872", cost="$0.01")
        prog.update("a", step="2/3", loss="3.979")  # too frequent for a log: only in the table
        prog.update("b", state="budget stop", note="not launched")
        prog.say("a: results found on me/x")
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[:3] == ["a: training", "b: budget stop (not launched)", "a: results found on me/x"]
    assert "1/3" not in text.split("study cpu")[0]
    table = text.split("study cpu", 1)[1]
    for header in ("run", "state", "step", "loss", "cost", "note"):
        assert header in table
    row_a = next(line for line in table.splitlines() if " a " in line)
    assert "training" in row_a and "2/3" in row_a and "3.979" in row_a and "$0.01" in row_a
    assert "budget stop" in next(line for line in table.splitlines() if " b " in line)


def test_on_a_terminal_the_table_is_live():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    with Progress(runs(), "study cpu", console) as prog:
        assert prog.live is not None
        prog.update("a", state="pod running", step="5/40", loss="1.234", cost="$0.42")
    final = out.getvalue().rsplit("study cpu", 1)[1]
    row_a = next(line for line in final.splitlines() if " a " in line)
    assert "pod running" in row_a and "5/40" in row_a and "1.234" in row_a and "$0.42" in row_a
