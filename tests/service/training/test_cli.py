"""``lossserve train`` and ``lossserve experiment`` end to end, through ``lossserve.cli.main``."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import losses
from losses import Task
from lossserve.cli import main
from lossserve.models.card import ModelCard, sha256_of
from lossserve.training import load_dataset

TINY = ["--epochs", "3", "--patience", "3", "--hidden", "16", "--quiet"]


def _csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["width,height,weight,kind"]
    for i in range(90):
        kind = ("cat", "dog", "fox")[i % 3]
        centre = {"cat": 0.0, "dog": 2.0, "fox": 4.0}[kind]
        values = rng.normal(centre, 1.0, size=3)
        rows.append(",".join(f"{v:.4f}" for v in values) + f",{kind}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_train_builtin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "train",
        "--dataset", "breast-cancer-imbalanced",
        "--loss", "binary_cross_entropy",
        "--class-weights", "balanced",
        "--name", "breast",
        "--model-repository", str(tmp_path),
        "--architecture", "linear",
        *TINY,
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "breast version 1 (binary, binary_cross_entropy): test macro-F1" in out
    card = ModelCard.read(tmp_path / "breast" / "1")
    assert card.architecture == "linear" and card.task == "binary"
    assert card.labels == ["benign", "malignant"]
    assert card.loss_params["pos_weight"] > 1.0  # negatives / positives
    assert card.threshold_kind == "thresholds" and len(card.thresholds) == 1
    assert card.sha256 == sha256_of(tmp_path / "breast" / "1" / "model.onnx")
    # what it was trained with, on how many rows, and how each class fares on test
    assert card.training is not None and card.training["options"]["architecture"] == "linear"
    assert card.training["rows"] == {"train": 236, "validation": 78, "test": 78}
    assert card.per_class is not None
    assert [c["label"] for c in card.per_class] == ["benign", "malignant"]
    assert [c["support"] for c in card.per_class] == [71, 7]
    report = (tmp_path / "breast" / "1" / "report.html").read_text()
    for section in ("Per class", "Confusion", "Precision-recall", "Reliability", "Training"):
        assert f"<h2>{section}" in report
    assert report.count("data:image/png;base64,") == 4
    assert "How the loss was chosen" not in report


def test_train_user_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _csv(tmp_path / "animals.csv")
    # No --model-repository: the serving setting's environment variable decides.
    monkeypatch.setenv("LOSSSERVE_MODEL_REPOSITORY", str(tmp_path / "repo"))
    argv = [
        "train",
        "--dataset", str(data),
        "--label", "kind",
        "--features", "width,height,weight",
        "--loss", "cross_entropy",
        "--params", '{"label_smoothing": 0.1}',
        "--name", "animals",
        "--seed", "3",
        *TINY,
    ]  # fmt: skip
    assert main(argv) == 0
    assert "wrote " in capsys.readouterr().out
    card = ModelCard.read(tmp_path / "repo" / "animals" / "1")
    assert card.labels == ["cat", "dog", "fox"]
    assert card.feature_names == ["width", "height", "weight"]
    assert card.input.shape == [-1, 3]
    assert card.loss_params["label_smoothing"] == 0.1
    assert card.dataset == str(data)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_progress_bar_only_on_a_terminal(
    terminal: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --quiet the bar shows on a terminal, and stays out of a log or a pipe."""
    stderr = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    argv = ["train", "--dataset", "breast-cancer-imbalanced", "--loss", "binary_cross_entropy",
            "--name", "breast", "--model-repository", str(tmp_path), "--architecture", "linear",
            "--epochs", "2", "--patience", "2"]  # fmt: skip
    assert main(argv) == 0
    shown = "2/2 [" in stderr.getvalue()  # tqdm's "n/total [elapsed<remaining, rate]"
    assert shown == terminal


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--loss", "focl"], "Did you mean 'focal'"),
        (["--loss", "dice", "--class-weights", "balanced"], "'dice', which takes none"),
        (["--loss", "focal", "--params", '{"gamma": -1}'], "gamma"),
        (["--loss", "focal", "--label", "y"], "expected no label, feature or split columns"),
        (["--loss", "focal", "--epochs", "0"], "epochs"),
    ],
)
def test_train_errors(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--dataset", "digits-lt", "--name", "m", "--model-repository", str(tmp_path)]
    assert main(argv + extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("lossserve train: error: ") and message in err
    assert list(tmp_path.iterdir()) == []


def test_train_user_file_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _csv(tmp_path / "animals.csv")
    argv = ["train", "--dataset", str(data), "--label", "species", "--loss", "focal",
            "--name", "m", "--model-repository", str(tmp_path / "repo")]  # fmt: skip
    assert main(argv) == 2
    assert "label column 'species': not found in animals.csv" in capsys.readouterr().err


def test_bad_params_json(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--dataset", "digits-lt", "--loss", "focal", "--name", "m",
              "--params", "[1]"])  # fmt: skip
    assert exit_info.value.code == 2
    assert "--params: expected a JSON object, got list" in capsys.readouterr().err


def test_experiment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "docs" / "results.md"
    argv = [
        "experiment", "digits-lt",
        "--folds", "3",
        "--learning-rates", "0.001", "0.003",
        "--losses", "cross_entropy+balanced,logit_adjusted_cross_entropy",
        "--epochs", "2",
        "--hidden", "16",
        "--quiet",
        "--output", str(output),
    ]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert [line.split(":")[0] for line in err.splitlines()[:5]] == [
        "cross_entropy", "cross_entropy+balanced", "logit_adjusted_cross_entropy",
        'LogisticRegression(class_weight="balanced")', 'LightGBM(class_weight="balanced")',
    ]  # fmt: skip
    assert "over 3 folds" in err.splitlines()[0]
    text = output.read_text()
    assert text.startswith("<!-- experiment: digits-lt -->\n## digits-lt: test macro-F1")
    assert out.strip() in text  # printed, and written as printed
    assert "3-fold stratified cross-validation x 1 seed (0)" in text
    # the reference first, then the variants asked for, then the baselines
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert [r.split(" | ")[1:3] for r in rows[1:]] == [
        ["cross_entropy", "-"],
        ["cross_entropy", "balanced"],
        ["logit_adjusted_cross_entropy", "-"],
        ["-", "balanced"],
        ["-", "balanced"],
    ]
    assert "| reference |" in rows[1] and " ± " in rows[1]  # three folds: mean ± std
    assert "With argmax: " in text and "With offsets: " in text


def test_experiment_on_a_user_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _csv(tmp_path / "animals.csv")
    argv = [
        "experiment", str(data),
        "--label", "kind",
        "--folds", "2",
        "--learning-rates", "0.01",
        "--losses", "cross_entropy",
        "--epochs", "2",
        "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "## animals.csv: test macro-F1" in out
    assert "| MLP | cross_entropy | - | " in out


def test_experiment_more_folds_than_rows_of_a_class(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment", "digits-lt", "--quiet"]) == 2  # 5 folds; digit 9 has 3 rows
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .endswith(
            "folds: expected at least 5 rows of class '9' for 5 folds (one in each test fold), "
            "got 3; use fewer folds"
        )
    )


def test_experiment_unknown_variant(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment", "digits-lt", "--losses", "focal,hinge", "--quiet"]) == 2
    assert "losses: expected names among cross_entropy" in capsys.readouterr().err


def test_train_loss_auto_chooses_by_cross_validation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "train", "--dataset", "breast-cancer-imbalanced", "--loss", "auto",
        "--name", "auto", "--model-repository", str(tmp_path),
        "--epochs", "3", "--hidden", "8", "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    card = json.loads((tmp_path / "auto" / "1" / "card.json").read_text())
    selection = card["selection"]
    keys = [row["key"] for row in selection["candidates"]]
    binary = sorted(n for n in losses.names() if Task.BINARY in losses.get(n).tasks)
    assert keys[0] == "binary_cross_entropy" == selection["reference"]
    assert sorted({row["loss"] for row in selection["candidates"]}) == binary
    assert "binary_cross_entropy+balanced" in keys and "sigmoid_focal" in keys
    assert all(len(row["interval"]) == 2 for row in selection["candidates"])
    means = {row["key"]: row["mean"] for row in selection["candidates"]}
    assert means[selection["chosen"]] == max(means.values())
    chosen = next(r for r in selection["candidates"] if r["key"] == selection["chosen"])
    assert card["loss"] == chosen["loss"]
    # the rate the chosen column (macro_f1: with the decision rule) picked in most folds
    picked = chosen["learning_rates"]
    assert len(picked) == 5 and set(picked) <= set(selection["learning_rates"])
    most = max(picked.count(r) for r in picked)
    assert selection["learning_rate"] == min(r for r in picked if picked.count(r) == most)
    assert card["training"]["options"]["learning_rate"] == selection["learning_rate"]
    assert (selection["metric"], selection["folds"]) == ("macro_f1", 5)
    assert out.startswith(f"chose {selection['chosen']} (learning rate ")
    report = (tmp_path / "auto" / "1" / "report.html").read_text()
    assert "<h2>How the loss was chosen</h2>" in report
    assert f"<td>{selection['chosen']}</td>" in report


def test_train_loss_auto_within_a_budget_keeps_what_it_ran(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "train", "--dataset", "digits-lt", "--loss", "auto", "--metric", "macro_f1_plain",
        "--budget", "0.001", "--name", "d", "--model-repository", str(tmp_path),
        "--epochs", "2", "--hidden", "8", "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    card = json.loads((tmp_path / "d" / "1" / "card.json").read_text())
    selection = card["selection"]
    # the reference always runs; nothing else starts past the budget
    assert selection["chosen"] == "cross_entropy" and card["loss"] == "cross_entropy"
    notes = [row.get("note") for row in selection["candidates"][1:]]
    assert notes and all(note == "not run: past the 0.001 s budget" for note in notes)
    # digit 9 has 2 rows in training and validation together: 2 folds, not 5
    assert selection["folds"] == 2


def test_train_loss_auto_takes_no_params(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "--dataset", "digits-lt", "--loss", "auto", "--name", "d",
            "--params", '{"gamma": 2}', "--quiet"]  # fmt: skip
    assert main(argv) == 2
    assert "expected no params or class weights with --loss auto" in capsys.readouterr().err


def test_the_report_of_a_multilabel_model(tmp_path: Path) -> None:
    argv = ["train", "--dataset", "multilabel-synth", "--loss", "binary_cross_entropy",
            "--name", "tags", "--model-repository", str(tmp_path), *TINY]  # fmt: skip
    assert main(argv) == 0
    card = ModelCard.read(tmp_path / "tags" / "1")
    assert card.per_class is not None and len(card.per_class) == len(card.labels) == 8
    report = (tmp_path / "tags" / "1" / "report.html").read_text()
    assert "<th>TN</th><th>FP</th><th>FN</th><th>TP</th>" in report  # per label, no matrix
    assert report.count("data:image/png;base64,") == 3


def test_auto_candidates_fit_every_row_of_the_data() -> None:
    """subset_softmax's max_k covers the rows of every split: on yeast a validation row has
    11 labels where no training row has more than 10."""
    from lossserve.training.selection import candidates

    yeast = load_dataset("yeast")
    assert int(yeast.train.targets.sum(axis=1).max()) == 10
    by_key = {v.key: v for v in candidates(yeast)}
    assert by_key["subset_softmax"].params == {"max_k": 11}
    assert next(iter(by_key)) == "binary_cross_entropy"
    assert "binary_cross_entropy+balanced" in by_key and "sigmoid_focal" in by_key


@pytest.mark.parametrize("helps", [True, False])
def test_train_warns_when_learned_thresholds_do_not_hold_out_of_sample(
    helps: bool,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lossserve.training import pipeline

    asked = []

    def verdict(*args: object) -> tuple[None, bool]:
        asked.append(args[0])
        return None, helps

    monkeypatch.setattr(pipeline, "keep_if_better", verdict)
    argv = ["train", "--dataset", "digits-lt", "--loss", "cross_entropy", "--name", "d",
            "--model-repository", str(tmp_path), *TINY]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert asked == [Task.MULTICLASS]
    warned = "warning: the learned offsets did not beat plain decisions" in err
    assert warned is not helps


def test_experiment_with_every_candidate_of_loss_auto(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _csv(tmp_path / "animals.csv")
    argv = ["experiment", str(data), "--label", "kind", "--losses", "auto", "--folds", "2",
            "--learning-rates", "0.01", "--epochs", "1", "--hidden", "4", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    multiclass = sorted(n for n in losses.names() if Task.MULTICLASS in losses.get(n).tasks)
    rows = [line.split(" | ")[1] for line in out.splitlines() if line.startswith("| MLP |")]
    assert sorted(set(rows)) == multiclass
    assert "| MLP | focal | balanced |" in out
